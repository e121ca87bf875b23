"""Shallow-net lab: starting a job, the server's queue, and the live panel that polls a job.

Jobs run in `core.shallow.jobs`' worker threads, one process-wide queue for every tab. A session
follows one job, whose id is kept in `st.session_state.sn_job` and in the address (`?job=`),
so a reload or a returning user finds it; other tabs see it in the server's list.
"""

from __future__ import annotations

import uuid

import streamlit as st

from core.device import describe_device
from core.shallow import charts, view
from core.shallow.config import TrainingConfig, article_results, format_duration, matching_article_result
from core.shallow.jobs import TrainingJob, default_queue
from core.shallow.runs import RunStore, RunStoreError
from pages._shared import is_presentation

POLL_SECONDS = 0.5


def run_store() -> RunStore:
    """The saved runs the queue writes to (created from `$EXPLORER_DATA_DIR` on first use)."""
    return default_queue().run_store()


def owner() -> str:
    return st.session_state.setdefault("sn_owner", uuid.uuid4().hex[:8])


def followed_job() -> TrainingJob | None:
    """The job this session follows: started here, chosen from the list, or named in the address."""
    if "sn_job" not in st.session_state and "job" in st.query_params:
        job_id = st.query_params["job"]
        if default_queue().get(job_id) is None:
            st.info(
                f"Job `{job_id}` from the link is not on this server any more (it was restarted); "
                "what it completed is under **Saved runs**."
            )
            del st.query_params["job"]
        else:
            st.session_state.sn_job = job_id
    job = default_queue().get(st.session_state.get("sn_job", ""))
    if job is not None:
        st.query_params["job"] = job.id
    return job


def _submit(config_data: dict) -> None:
    st.session_state.pop("sn_confirm", None)
    try:
        job = default_queue().submit(
            TrainingConfig.from_dict(config_data), owner=owner(), has_gpu=bool(describe_device().gpus)
        )
    except (ValueError, RunStoreError) as error:
        st.session_state.sn_start_error = str(error)
        return
    st.session_state.sn_job = job.id


def _request_start(config_data: dict) -> None:
    """Starts at once when the server is idle; otherwise asks first (see `start_controls`)."""
    if default_queue().active():
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
    active = default_queue().active()
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
    """The server's waiting and running jobs, from every tab, each with a button to follow it.

    The list refreshes itself while there are jobs; an idle server is asked again on the next rerun.
    """

    @st.fragment(run_every=2 if default_queue().active() else None)
    def job_list() -> None:
        active = default_queue().active()
        if not active:
            return
        followed = st.session_state.get("sn_job")
        st.markdown("**Training on this server now**")
        for job in active:
            whose = " (yours)" if job.owner == st.session_state.get("sn_owner") else ""
            text, button = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"`{job.id}`{whose}: **{job.config.label}**, {view.status_line(job.snapshot())}")
            if job.id != followed:
                button.button("Watch", key=f"sn_watch_{job.id}", on_click=_follow, args=(job.id,))

    job_list()


def live_panel(job: TrainingJob) -> None:
    """Polls the job from a fragment until it is done, then reruns the page once to show the results."""
    was_running = not job.snapshot().done

    @st.fragment(run_every=POLL_SECONDS if was_running else None)
    def panel() -> None:
        progress = job.snapshot()
        if was_running and progress.done:
            st.rerun()
        large = is_presentation()
        st.subheader(f"{job.config.label}  ·  {progress.status}")
        st.progress(progress.fraction_done, text=view.status_line(progress))
        if progress.status == "queued":
            st.button("Cancel", key="sn_cancel", on_click=default_queue().cancel, args=(job.id,))
            return
        # Six numbers fit one row; in presentation mode their large digits need two.
        columns = st.columns(3) + st.columns(3) if large else st.columns(6)
        columns[0].metric("Epoch", f"{progress.epoch} / {progress.epochs}")
        columns[1].metric("Samples/s", f"{progress.samples_per_second:,.0f}" if progress.samples_per_second else "–")
        columns[2].metric("ETA", format_duration(progress.eta_seconds) if progress.eta_seconds is not None else "–")
        columns[3].metric("Elapsed", format_duration(progress.elapsed_seconds))
        columns[4].metric("Train acc.", f"{progress.train_accuracy:.1%}" if progress.train_accuracy else "–")
        columns[5].metric("Val. acc.", f"{progress.val_accuracy:.1%}" if progress.val_accuracy else "–")
        if progress.done and progress.error:
            (st.warning if progress.evaluation else st.error)(progress.error)
        if progress.device:
            st.caption(view.training_caption(progress))
        if not progress.done:
            st.button(
                "Stop (keeps the best weights so far and evaluates them)",
                key="sn_stop",
                icon=":material/stop:",
                disabled=progress.status == "stopping",
                on_click=default_queue().cancel,
                args=(job.id,),
            )
        frame = view.curve_frame(progress.history, view.live_point(progress))
        if frame.empty:
            st.caption("The curves appear after the first batches.")
            return
        match = matching_article_result(job.config)
        references = [(f"AlexNet {article_results()[1]:.2%}", article_results()[1])]
        if match:
            references.append((f"article {match.reported['test_accuracy']:.2%}", match.reported["test_accuracy"]))
        loss_column, accuracy_column = st.columns(2)
        loss_column.altair_chart(charts.training_curve(frame, "loss", large=large))
        accuracy_column.altair_chart(charts.training_curve(frame, "accuracy", references, large=large))

    panel()
