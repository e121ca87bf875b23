"""Class board: every run this server finished since the lecturer cleared it, live, for the projector."""

import streamlit as st

from core.shallow import board, charts
from core.shallow.config import ACTIVATIONS, TrainingConfig, article_results, matching_article_result
from core.shallow.runs import RunStore, RunStoreError, default_db_path
from pages._classroom import actor, is_classroom
from pages._shared import is_presentation
from pages.shallow.settings import ARCHITECTURE_NAMES

REFRESH_SECONDS = 5

st.title("Class board")
st.caption(
    "Every run this server finished since the board was last cleared, refreshed every few seconds. "
    "Names are the nicknames students chose in the sidebar; nothing else about anyone is shown."
)


@st.cache_resource(show_spinner=False)
def store(path: str) -> RunStore:
    return RunStore(path)


def _clear() -> None:
    store(str(default_db_path())).clear_board()


architectures, activations = board.filter_choices()
left, right, clear = st.columns([2, 2, 1], vertical_alignment="bottom")
chosen_architectures = left.multiselect(
    "Architecture", architectures, format_func=ARCHITECTURE_NAMES.get, key="board_architectures", placeholder="all"
)
chosen_activations = right.multiselect(
    "Activation", activations, format_func=lambda name: ACTIVATIONS[name][0], key="board_activations", placeholder="all"
)
if not is_classroom() or actor().lecturer:
    clear.button("Clear", on_click=_clear, icon=":material/restart_alt:", help="Earlier runs stay saved.")


@st.fragment(run_every=REFRESH_SECONDS)
def live_board() -> None:
    try:
        runs = store(str(default_db_path())).board_runs()
    except RunStoreError as error:
        st.error(str(error))
        return
    shown = board.filter_runs(runs, chosen_architectures, chosen_activations)
    st.markdown(f"**{len(shown)}** of {len(runs)} runs on the board match the filters.")
    large = is_presentation()
    alexnet = article_results()[1]
    # The article's headline network (the default settings): 392 neurons, no activation, 80% dropout.
    article_best = matching_article_result(TrainingConfig()).reported["test_accuracy"]
    chart, table = st.columns([1, 1] if large else [3, 2])
    chart.altair_chart(
        charts.accuracy_versus_parameters(
            board.board_points(shown), alexnet, large=large, runs_label=board.CLASS_SOURCE, article=article_best
        )
    )
    table.markdown("**Leaderboard**: each session's best run")
    table.dataframe(
        board.leaderboard(shown),
        hide_index=True,
        column_config={
            "test accuracy": st.column_config.NumberColumn(format="percent"),
            "parameters": st.column_config.NumberColumn(format="localized"),
        },
    )


live_board()
