"""Shallow-net lab: starting a job, the server's queue, and the live panel that polls a job.

Jobs run in `core.shallow.jobs`' worker threads, one process-wide queue for every tab. A session
follows one job, whose id is kept in `st.session_state.sn_job` and in the address (`?job=`),
so a reload or a returning user finds it; other tabs see it in the server's list.

In classroom mode (`pages._classroom`) the link only lets another browser watch: Stop and
Cancel are offered to the job's owner (the browser that started it, across reloads) and to
the lecturer, who also reorders, cancels and clears the queue and sets its limits.
"""

from __future__ import annotations

import os
import threading

import streamlit as st

from core.classroom import ClassLimits, NotYours
from core.device import describe_device
from core.shallow import charts, view
from core.shallow.config import TrainingConfig, article_results, format_duration, matching_article_result
from core.shallow.jobs import JobQueue, TrainingJob, default_queue
from core.shallow.runs import RunStore, RunStoreError
from pages._classroom import actor, is_classroom, is_lecturer, nickname, session_owner
from pages._shared import is_presentation

POLL_SECONDS = 0.5
CLASSROOM_POLL_SECONDS = 1.0
POLL_NICENESS: int | None = 10
"""The CPU priority (Linux nice) of a script run that polls a running job; None leaves it alone."""


def queue() -> JobQueue:
    """The server's queue, switched to classroom mode's fair turns the first time a key is configured."""
    server_queue = default_queue()
    if is_classroom() and server_queue.limits is None:
        try:
            server_queue.configure(ClassLimits.from_env())
        except ValueError as error:
            st.error(f"Classroom limits ignored: {error}")
            server_queue.configure(ClassLimits())
    elif not is_classroom() and server_queue.limits is not None:
        server_queue.configure(None)
    return server_queue


def run_store() -> RunStore:
    """The saved runs the queue writes to (created from `$EXPLORER_DATA_DIR` on first use)."""
    return queue().run_store()


def owner() -> str:
    return session_owner()


def rename_owner(session: str, name: str | None) -> None:
    """A new nickname for the session's saved runs and waiting jobs."""
    queue().set_nickname(session, name)
    try:
        run_store().set_nickname(session, name)
    except RunStoreError as error:
        st.session_state.class_nickname_error = str(error)


def _manage(action, *args) -> None:
    """Runs a Stop, Cancel or lecturer action; one that is not this session's to take is explained instead."""
    try:
        action(*args)
    except (NotYours, KeyError) as error:
        st.session_state.sn_manage_error = str(error).strip("'\"")


def manage_message() -> None:
    if "sn_manage_error" in st.session_state:
        st.error(st.session_state.pop("sn_manage_error"))


def followed_job() -> TrainingJob | None:
    """The job this session follows: started here, chosen from the list, or named in the address."""
    if "sn_job" not in st.session_state and "job" in st.query_params:
        job_id = st.query_params["job"]
        if queue().get(job_id) is None:
            st.info(
                f"Job `{job_id}` from the link is not on this server any more (it was restarted); "
                "what it completed is under **Saved runs**."
            )
            del st.query_params["job"]
        else:
            st.session_state.sn_job = job_id
    job = queue().get(st.session_state.get("sn_job", ""))
    if job is not None:
        st.query_params["job"] = job.id
    return job


def _submit(config_data: dict) -> None:
    st.session_state.pop("sn_confirm", None)
    try:
        job = queue().submit(
            TrainingConfig.from_dict(config_data),
            owner=owner(),
            has_gpu=bool(describe_device().gpus),
            nickname=nickname(),
            exempt=is_lecturer(),
        )
    except (ValueError, RunStoreError) as error:
        st.session_state.sn_start_error = str(error)
        return
    st.session_state.sn_job = job.id


def _request_start(config_data: dict) -> None:
    """Starts at once when the server is idle or in classroom mode (its caps decide); otherwise asks first."""
    if queue().active() and not is_classroom():
        st.session_state.sn_confirm = config_data
    else:
        _submit(config_data)


def _follow(job_id: str) -> None:
    st.session_state.sn_job = job_id
    st.session_state.pop("sn_confirm", None)


def start_controls(config: TrainingConfig | None, affordable: bool) -> None:
    """The Start button, and the question asked when the server is already training."""
    st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        disabled=config is None or not affordable,
        on_click=_request_start,
        args=(config.to_dict() if config else {},),
    )
    if "sn_start_error" in st.session_state:
        st.error(st.session_state.pop("sn_start_error"))
    pending = st.session_state.get("sn_confirm")
    if not pending:
        return
    active = queue().active()
    same = next((job for job in active if job.config.to_dict() == pending), None)
    if same is not None:
        st.warning(f"This exact configuration is already {same.snapshot().status} on the server ({same.id}).")
        st.button("Watch that job instead", on_click=_follow, args=(same.id,))
        return
    st.warning(
        f"The server is busy with {len(active)} job(s); yours would wait for them (jobs run one at a time): "
        + "; ".join(f"**{job.config.label}** ({job.snapshot().status})" for job in active)
    )
    left, right = st.columns(2)
    left.button("Queue mine anyway", on_click=_submit, args=(pending,))
    right.button("Don't start", on_click=lambda: st.session_state.pop("sn_confirm", None))


def server_jobs() -> None:
    """The server's running and waiting jobs (in the order they will start), each with a button to follow it.

    The lecturer also gets "Run next" and "Cancel" on each job, "Clear the queue", and the limits.
    The list refreshes itself while there are jobs; an idle server is asked again on the next rerun.
    """
    if is_lecturer():
        lecturer_controls()

    @st.fragment(run_every=2 if queue().active() else None)
    def job_list() -> None:
        server_queue = queue()
        running = [job for job in server_queue.active() if job.snapshot().status != "queued"]
        active = running + server_queue.waiting()
        if not active:
            return
        followed, me, lecturer = st.session_state.get("sn_job"), owner(), is_lecturer()
        st.markdown("**Training on this server now**")
        manage_message()
        for job in active:
            progress = job.snapshot()
            whose = " (yours)" if job.owner == me else (f" ({job.nickname})" if job.nickname else "")
            text, *buttons = st.columns([5, 1, 1, 1] if lecturer else [5, 1], vertical_alignment="center")
            text.markdown(f"`{job.id}`{whose}: **{job.config.label}**, {view.status_line(progress)}")
            if job.id != followed:
                buttons[0].button("Watch", key=f"sn_watch_{job.id}", on_click=_follow, args=(job.id,))
            if lecturer and progress.status == "queued" and progress.queue_position != 1:
                buttons[1].button(
                    "Run next",
                    key=f"sn_next_{job.id}",
                    on_click=_manage,
                    args=(server_queue.move_to_front, job.id, actor()),
                )
            if lecturer:
                buttons[2].button(
                    "Cancel" if progress.status == "queued" else "Stop",
                    key=f"sn_end_{job.id}",
                    on_click=_manage,
                    args=(server_queue.cancel, job.id, actor()),
                )

    job_list()


def lecturer_controls() -> None:
    """The lecturer's queue settings: per-session caps, the job-length cap, and clearing the queue."""
    server_queue = queue()
    limits = server_queue.limits or ClassLimits()
    with st.popover("Queue settings (lecturer)", icon=":material/tune:"):
        with st.form("sn_limits", border=False):
            waiting = st.number_input("Waiting jobs per session", 1, 20, limits.waiting_per_session)
            running = st.number_input("Running jobs per session", 1, 20, limits.running_per_session)
            minutes = st.number_input(
                "Longest job a student may queue (minutes, 0 for no cap)", 0.0, 24 * 60.0, limits.max_job_minutes or 0.0
            )
            if st.form_submit_button("Apply"):
                server_queue.configure(ClassLimits(int(waiting), int(running), minutes or None))
                st.rerun()
        waiting_jobs = len(server_queue.waiting())
        st.button(
            f"Clear the queue (cancel {waiting_jobs} waiting)",
            disabled=not waiting_jobs,
            on_click=_manage,
            args=(server_queue.clear_waiting, actor()),
        )


def live_panel(job: TrainingJob, compact: bool = False) -> None:
    """Polls the job from a fragment until it is done, then reruns the page once to show the results.

    `compact` (the projector layout, beside the settings): three numbers and the accuracy curve
    first, the loss curve under it. In classroom mode, where thirty tabs may watch one run, each
    tab polls once a second and the curves are built once per epoch, shared by every watcher.
    """
    was_running = not job.snapshot().done
    poll = CLASSROOM_POLL_SECONDS if is_classroom() else POLL_SECONDS

    @st.fragment(run_every=poll if was_running else None)
    def panel() -> None:
        if was_running:
            yield_to_training()
        progress = job.snapshot()
        if was_running and progress.done:
            st.rerun()
        large = is_presentation()
        if compact:  # The heading's line goes into the progress bar's text.
            st.progress(progress.fraction_done, text=f"**{job.config.label}** · {view.status_line(progress)}")
        else:
            st.subheader(f"{job.config.label}  ·  {progress.status}")
            st.progress(progress.fraction_done, text=view.status_line(progress))
        if progress.status == "queued":
            if actor().may_manage(job.owner):
                st.button("Cancel", key="sn_cancel", on_click=_manage, args=(queue().cancel, job.id, actor()))
            manage_message()
            return
        numbers = {
            "Epoch": f"{progress.epoch} / {progress.epochs}",
            "Samples/s": f"{progress.samples_per_second:,.0f}" if progress.samples_per_second else "–",
            "ETA": format_duration(progress.eta_seconds) if progress.eta_seconds is not None else "–",
            "Elapsed": format_duration(progress.elapsed_seconds),
            "Train acc.": f"{progress.train_accuracy:.1%}" if progress.train_accuracy else "–",
            "Val. acc.": f"{progress.val_accuracy:.1%}" if progress.val_accuracy else "–",
        }
        if compact:  # Beside the settings three large numbers fit; the others go in a line of text.
            for column, label in zip(st.columns(3), ("Epoch", "Val. acc.", "ETA"), strict=True):
                column.metric(label, numbers[label])
            accuracy_slot = st.container()  # The accuracy curve right under the numbers, the rest below it.
            st.caption(" · ".join(f"{label} {numbers[label]}" for label in ("Samples/s", "Elapsed", "Train acc.")))
        else:  # Six numbers fit one row; in presentation mode their large digits need two.
            columns = st.columns(3) + st.columns(3) if large else st.columns(6)
            for column, (label, value) in zip(columns, numbers.items(), strict=True):
                column.metric(label, value)
        if progress.done and progress.error:
            (st.warning if progress.evaluation else st.error)(progress.error)
        if progress.device:
            st.caption(view.training_caption(progress))
        if not progress.done and actor().may_manage(job.owner):
            st.button(
                "Stop (keeps the best weights so far and evaluates them)",
                key="sn_stop",
                icon=":material/stop:",
                disabled=progress.status == "stopping",
                on_click=_manage,
                args=(queue().cancel, job.id, actor()),
            )
        elif not progress.done:
            st.caption("You are watching another session's job: only it (or the lecturer) can stop it.")
        manage_message()
        # In classroom mode the curves move once per epoch, so every watcher shares one chart per epoch.
        live = None if is_classroom() else view.live_point(progress)
        frame = view.curve_frame(progress.history, live)
        if frame.empty:
            st.caption(f"The curves appear after the first {'epoch' if live is None else 'batches'}.")
            return
        loss_chart, accuracy_chart = curves(job, frame, large)
        if compact:
            accuracy_slot.altair_chart(accuracy_chart.properties(height=400))
            st.altair_chart(loss_chart.properties(height=400))
        else:
            loss_column, accuracy_column = st.columns(2)
            loss_column.altair_chart(loss_chart)
            accuracy_column.altair_chart(accuracy_chart)

    panel()


def curves(job: TrainingJob, frame, large: bool):
    """The loss and accuracy charts of a job, with AlexNet's line and the article's for the same network."""
    if is_classroom():  # The frame holds whole epochs only (no live point).
        return _epoch_curves(job.id, len(frame), large, job.config, frame)
    return _build_curves(job.config, frame, large)


@st.cache_resource(max_entries=32, show_spinner=False)
def _epoch_curves(job_id: str, points: int, large: bool, _config, _frame):
    """One chart pair per job, epoch count and size, shared by every session that watches the job."""
    return _build_curves(_config, _frame, large)


def _build_curves(config: TrainingConfig, frame, large: bool):
    match = matching_article_result(config)
    references = [(f"AlexNet {article_results()[1]:.2%}", article_results()[1])]
    if match:
        references.append((f"article {match.reported['test_accuracy']:.2%}", match.reported["test_accuracy"]))
    return (
        charts.training_curve(frame, "loss", large=large),
        charts.training_curve(frame, "accuracy", references, large=large),
    )


def yield_to_training() -> None:
    """Lowers this script run's CPU priority while it polls a running job (Linux; no privilege needed).

    The web server's reruns and the training process share the machine's cores; at nice 10 a
    polling rerun gets about a tenth of a core's time that training also wants, so thirty tabs
    watching a run take what the training leaves idle instead of a share of its speed.
    Streamlit runs each script run in a thread of its own, and the priority ends with it.
    """
    if POLL_NICENESS is None or not hasattr(os, "setpriority"):
        return
    try:
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) < POLL_NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, POLL_NICENESS)
    except OSError:  # Not allowed here (another OS, a sandbox): polling simply keeps its priority.
        pass
