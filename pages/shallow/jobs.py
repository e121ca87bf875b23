"""Shallow-net lab: starting a job and the server's queue (its list is `queue_view`, the live panel `live`).

Jobs run in `core.shallow.jobs`' worker threads, one process-wide queue for every tab. A session
follows one job, whose id is kept in `st.session_state.sn_job` and in the address (`?job=`),
so a reload or a returning user finds it; other tabs see it in the server's list.

In classroom mode (`pages._classroom`) the link only lets another browser watch: Stop and
Cancel are offered to the job's owner (the browser that started it, across reloads) and to
the lecturer, who also reorders, cancels and clears the queue and sets its limits.
"""

from __future__ import annotations

import streamlit as st

from core.classroom import ClassLimits, NotYours
from core.device import describe_device
from core.shallow.config import TrainingConfig
from core.shallow.jobs import JobQueue, TrainingJob, default_queue
from core.shallow.runs import RunStore, RunStoreError
from pages._classroom import is_classroom, is_lecturer, nickname, session_owner


def queue() -> JobQueue:
    """The server's queue, switched to classroom mode's fair turns the first time a key is configured."""
    try:
        server_queue = default_queue()
    except ValueError as error:  # EXPLORER_RAY_ADDRESS names a cluster that cannot be used (now).
        st.error(f"Training is not available: {error}")
        st.stop()
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
