"""Shallow-net lab: the live panel that polls the job a session follows, with its curves."""

from __future__ import annotations

import os
import threading

import streamlit as st

from core.shallow import view
from core.shallow.config import format_duration
from core.shallow.jobs import TrainingJob
from pages._classroom import actor, is_classroom
from pages._shared import draw_chart, is_presentation
from pages.shallow.curves import build_curves, epoch_specs
from pages.shallow.jobs import _manage, manage_message, queue

POLL_SECONDS = 0.5
CLASSROOM_POLL_SECONDS = 1.0
WATCHER_POLL_SECONDS = 3.0
"""In classroom mode a job's owner sees it move every second; the thirty tabs that follow
someone else's run (the projector's, a friend's) every three, which keeps the server's share
of the cores small (BENCHMARKS.md, the lecture hall)."""
POLL_NICENESS: int | None = 10
"""The CPU priority (Linux nice) of a script run that polls a running job; None leaves it alone."""


def live_panel(job: TrainingJob, compact: bool = False) -> None:
    """Polls the job from a fragment until it is done, then reruns the page once to show the results.

    `compact` (the projector layout, beside the settings): three numbers and the accuracy curve
    first, the loss curve under it. In classroom mode, where thirty tabs may watch one run, the
    owner's tab polls once a second, the others every three, and the curves are built once per
    epoch, shared by every watcher.
    """
    was_running = not job.snapshot().done
    poll = POLL_SECONDS
    if is_classroom():
        poll = CLASSROOM_POLL_SECONDS if actor().may_manage(job.owner) else WATCHER_POLL_SECONDS

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
        height = 400 if compact else None
        if is_classroom():  # The curves move once per epoch; every watcher draws the same ready specs.
            if not progress.history:
                st.caption("The curves appear after the first epoch.")
                return
            loss_chart, accuracy_chart = epoch_specs(job, progress.history, large, height)
        else:
            frame = view.curve_frame(progress.history, view.live_point(progress))
            if frame.empty:
                st.caption("The curves appear after the first batches.")
                return
            loss_chart, accuracy_chart = (
                chart.properties(height=height) if height else chart for chart in build_curves(job.config, frame, large)
            )
        if compact:
            draw_chart(accuracy_slot, accuracy_chart)
            draw_chart(st, loss_chart)
        else:
            loss_column, accuracy_column = st.columns(2)
            draw_chart(loss_column, loss_chart)
            draw_chart(accuracy_column, accuracy_chart)

    panel()


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
