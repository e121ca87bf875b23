"""Shallow-net lab: replay a real full-length run at a chosen speed, beside a live one.

Offered only when `assets/replays/` holds the history of a run that really happened
(`core.shallow.replay`); the page never draws a made-up history.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.shallow import charts, view
from core.shallow.config import article_results, format_duration
from core.shallow.replay import epochs_shown, load_replays, replay_dir
from pages._shared import is_presentation

SPEEDS = {"10 s": 10.0, "30 s": 30.0, "1 min": 60.0, "2 min": 120.0}


@st.cache_data(show_spinner=False, ttl=60)
def replays(folder: str):
    return load_replays(Path(folder))


def _play(duration: float) -> None:
    st.session_state.sn_replay_started = time.monotonic()
    st.session_state.sn_replay_duration = duration


def replay_panel() -> None:
    """An expander with the shipped replays; nothing at all when there are none."""
    shipped, problems = replays(str(replay_dir()))
    if not shipped:
        return
    with st.expander(f"Replay a full-length run ({len(shipped)} recorded)"):
        for problem in problems:
            st.warning(problem)
        chosen = shipped[
            st.selectbox(
                "Run", range(len(shipped)), format_func=lambda index: shipped[index].title, key="sn_replay_run"
            )
        ]
        speed = st.radio("Play it in", list(SPEEDS), index=1, horizontal=True, key="sn_replay_speed")
        st.caption(
            f"It really trained for {format_duration(chosen.training_seconds)} ({len(chosen.history)} epochs); "
            f"here it plays in {speed}. Recorded by `{chosen.source}` on {chosen.date}."
        )
        st.button("Play", icon=":material/play_arrow:", key="sn_replay_play", on_click=_play, args=(SPEEDS[speed],))
        _curves(chosen)


def _curves(chosen) -> None:
    started = st.session_state.get("sn_replay_started")
    duration = st.session_state.get("sn_replay_duration", 30.0)
    playing = started is not None and time.monotonic() - started < duration

    @st.fragment(run_every=0.5 if playing else None)
    def curves() -> None:
        elapsed = time.monotonic() - started if started is not None else 0.0
        shown = epochs_shown(chosen, elapsed, duration) if started is not None else len(chosen.history)
        if started is not None and elapsed >= duration and playing:
            st.rerun()
        history = chosen.history[:shown]
        st.progress(shown / len(chosen.history), text=f"Epoch {shown} of {len(chosen.history)}")
        frame = view.curve_frame(history)
        if frame.empty:
            return
        large = is_presentation()
        references = [(f"AlexNet {article_results()[1]:.2%}", article_results()[1])]
        left, right = st.columns(2)
        left.altair_chart(charts.training_curve(frame, "loss", large=large))
        right.altair_chart(charts.training_curve(frame, "accuracy", references, large=large))
        if shown == len(chosen.history):
            st.caption(f"Test accuracy of the best epoch: {chosen.test_accuracy:.2%} (loss {chosen.test_loss:.4f}).")

    curves()
