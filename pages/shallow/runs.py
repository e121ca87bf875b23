"""Shallow-net lab: saved runs (SQLite, kept across restarts): list, compare, open, download, delete."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from core.classroom import NotYours
from core.shallow import charts, view
from core.shallow.config import article_results
from core.shallow.runs import RunStoreError
from pages._classroom import actor
from pages._shared import is_presentation
from pages.shallow.jobs import run_store
from pages.shallow.picture import trained_network
from pages.shallow.results import PERCENT, show_results
from pages.shallow.settings import load


def _delete(run_id: int) -> None:
    try:
        run_store().delete_run(run_id, actor())
    except (KeyError, ValueError, RunStoreError, NotYours) as error:
        st.session_state.sn_delete_error = str(error)
        return
    st.session_state.sn_open_run = None


def _use_settings(config: dict, run_id: int) -> None:
    settings, problems = view.config_from_saved(config, run_id)
    load(settings)
    st.session_state.sn_config = settings.to_dict()
    st.session_state.sn_link_problems = problems
    st.session_state.sn_tab = "Train"


def compare(runs) -> None:
    """Validation curves of the chosen runs overlaid, and every run's accuracy against its size."""
    large = is_presentation()
    titles = {run.run_id: view.run_title(run) for run in runs}
    st.session_state.setdefault("sn_compare", [run.run_id for run in runs if run.epochs_run][:3])
    st.session_state.sn_compare = [run_id for run_id in st.session_state.sn_compare if run_id in titles]
    chosen = st.multiselect("Compare runs", list(titles), format_func=titles.get, key="sn_compare")
    histories = {titles[run_id]: run_store().history(run_id) for run_id in chosen}
    frame = view.compare_curves_frame(histories)
    if not frame.empty:
        loss, accuracy = st.columns(2)
        loss.altair_chart(charts.compare_curves(frame, "loss", large=large))
        accuracy.altair_chart(charts.compare_curves(frame, "accuracy", large=large))
    st.altair_chart(
        charts.accuracy_versus_parameters(view.accuracy_params_frame(runs), article_results()[1], large=large)
    )


def open_run(runs) -> None:
    """One run in full: its curves and test results, its files, and a way to reuse or delete it."""
    ids = [run.run_id for run in runs]
    if "sn_open_run" not in st.session_state:
        linked = st.query_params.get("run", "")
        # Only ASCII digits: "²".isdigit() is true, yet int("²") raises.
        run_id = int(linked) if re.fullmatch(r"[0-9]{1,18}", linked) else None
        if linked and run_id not in ids:
            st.warning(f"Ignored `run={linked}` from the link: there is no saved run with that number.")
        st.session_state.sn_open_run = run_id if run_id in ids else None
    elif st.session_state.sn_open_run not in ids:
        st.session_state.sn_open_run = None
    titles = {run.run_id: view.run_title(run) for run in runs}
    run_id = st.selectbox(
        "Open a saved run", ids, format_func=titles.get, key="sn_open_run", placeholder="Choose a run"
    )
    if run_id is None:
        st.query_params.pop("run", None)
        return
    st.query_params["run"] = str(run_id)
    run = run_store().get_run(run_id)
    st.markdown(
        f"**{run.label}**: {run.params:,} parameters, {run.epochs_run} epochs (best {run.best_epoch or '–'}), "
        f"{run.status}, on {run.device} with the {run.engine} engine."
    )
    if run.error:
        st.error(run.error.splitlines()[0])
    buttons = st.columns(4)
    if run.has_model:
        buttons[0].download_button(
            "Model (.keras)",
            lambda: Path(run.model_path).read_bytes(),
            f"shallow-run-{run_id}.keras",
            on_click="ignore",
            icon=":material/download:",
        )
    buttons[1].download_button(
        "History (CSV)",
        run_store().history_csv(run_id),
        f"shallow-run-{run_id}-history.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
    )
    buttons[2].button("Use these settings", on_click=_use_settings, args=(run.config, run_id), icon=":material/tune:")
    if actor().may_manage(run.session_owner):
        with buttons[3].popover("Delete", icon=":material/delete:"):
            st.button(f"Yes, delete run #{run_id} and its model", on_click=_delete, args=(run_id,), type="primary")
    else:
        buttons[3].caption("Another session's run: read-only.")
    if "sn_delete_error" in st.session_state:
        st.error(st.session_state.pop("sn_delete_error"))
    frame = view.curve_frame(run_store().history(run_id))
    if not frame.empty:
        loss, accuracy = st.columns(2)
        loss.altair_chart(charts.training_curve(frame, "loss", large=is_presentation()))
        accuracy.altair_chart(charts.training_curve(frame, "accuracy", large=is_presentation()))
    if run.evaluation:
        show_results(run.evaluation, run.config, prefix="sn_saved")
    trained_network(run.config, run.model_path, "sn_saved", run.evaluation)


def saved_runs() -> None:
    try:
        _saved_runs()
    except RunStoreError as error:  # An unreadable or unwritable data folder: say so, keep the app up.
        st.error(str(error))


def _saved_runs() -> None:
    runs = run_store().list_runs()
    if not runs:
        st.info("No saved runs yet. Every run is saved here as it trains, and stays after a server restart.")
        return
    st.dataframe(
        view.runs_frame(runs),
        hide_index=True,
        column_config={
            "parameters": st.column_config.NumberColumn(format="localized"),
            "test accuracy": PERCENT,
            "precision": PERCENT,
            "recall": PERCENT,
            "test loss": st.column_config.NumberColumn(format="%.3f"),
            "minutes": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    compare(runs)
    st.divider()
    open_run(runs)
