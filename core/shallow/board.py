"""The class board: the runs this server finished since the lecturer last cleared it, for a projector.

Everything here is computed from saved `Run`s (`RunStore.board_runs`): the filters by
architecture and activation, the points of test accuracy against parameters (beside the
article's results and AlexNet's line), and the leaderboard, which keeps each session's best
run under the nickname it chose. A session is known only by its opaque owner token, which is
never shown: a session without a nickname is "Anonymous 1", "Anonymous 2"... in order of
its first run on the board.
"""

from __future__ import annotations

import pandas as pd

from core.shallow.config import ACTIVATIONS, ARCHITECTURES
from core.shallow.view import accuracy_params_frame

CLASS_SOURCE = "the class"


def filter_runs(runs, architectures=None, activations=None) -> list:
    """The runs whose network matches the chosen architectures and activations (None or empty: all)."""

    def chosen(value, allowed) -> bool:
        return not allowed or value in allowed

    return [
        run
        for run in runs
        if chosen(run.config.get("architecture", "article"), architectures)
        and chosen(run.config.get("activation", "none"), activations)
    ]


def board_points(runs) -> pd.DataFrame:
    """Test accuracy against parameters: the class's runs, the article's results and AlexNet."""
    frame = accuracy_params_frame(runs)
    return frame.replace({"source": {"your runs": CLASS_SOURCE}})


def leaderboard(runs) -> pd.DataFrame:
    """Each session's best run, best first: place, name, test accuracy, parameters, network, run.

    Ties in accuracy go to the smaller network, then to the run that finished first.
    """
    names: dict = {}  # Session -> its latest nickname (None: none yet), in order of first run.
    best: dict = {}
    for run in sorted(runs, key=lambda run: (run.finished_at or 0.0, run.run_id)):
        session = run.session_owner or f"run-{run.run_id}"  # A run from no session stands alone.
        names[session] = run.nickname or names.get(session)
        key = (-run.test_accuracy, run.params, run.finished_at or 0.0)
        if session not in best or key < best[session][0]:
            best[session] = (key, run)
    unnamed = [session for session, name in names.items() if name is None]
    names.update({session: f"Anonymous {number}" for number, session in enumerate(unnamed, 1)})
    rows = [
        {
            "name": names[session],
            "test accuracy": run.test_accuracy,
            "parameters": run.params,
            "network": network_name(run.config),
            "run": run.run_id,
        }
        for session, (_, run) in sorted(best.items(), key=lambda item: item[1][0])
    ]
    frame = pd.DataFrame(rows, columns=["name", "test accuracy", "parameters", "network", "run"])
    frame.insert(0, "place", range(1, len(frame) + 1))
    return frame


def network_name(config: dict) -> str:
    """Like "per-pixel 78, none, dropout 0.8" or "MLP 128-64, ReLU, dropout 0.5"."""
    architecture = "per-pixel" if config.get("architecture", "article") == "article" else "MLP"
    units = "-".join(str(unit) for unit in config.get("hidden_units", ()))
    activation = ACTIVATIONS.get(config.get("activation", "none"), (config.get("activation"),))[0]
    return f"{architecture} {units}, {activation}, dropout {config.get('dropout', 0):g}"


def filter_choices() -> tuple[list[str], list[str]]:
    """The architectures and activations a board can be filtered by (the config's own tables)."""
    return list(ARCHITECTURES), list(ACTIVATIONS)
