"""Shallow-net lab: the server's list of running and waiting jobs, and the lecturer's queue controls."""

from __future__ import annotations

import streamlit as st

from core.classroom import ClassLimits
from core.shallow import view
from pages._classroom import actor, is_classroom, is_lecturer
from pages.shallow.jobs import _follow, _manage, manage_message, owner, queue


def server_jobs() -> None:
    """The server's running and waiting jobs (in the order they will start), each with a button to follow it.

    The lecturer also gets "Run next" and "Cancel" on each job, "Clear the queue", and the limits.
    The list refreshes itself while there are jobs (every 2 s; every 5 s in classroom mode, where
    thirty tabs ask); an idle server is asked again on the next rerun.
    """
    if is_lecturer():
        lecturer_controls()

    @st.fragment(run_every=(5 if is_classroom() else 2) if queue().active() else None)
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
