"""The class board: filters, the best run per session under its nickname, the points, and the page itself."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.labs import ROOT
from core.shallow import board
from core.shallow.runs import Run, RunStore

PAGE = str(ROOT / "pages" / "classboard" / "lab.py")


def run(run_id, accuracy, params, owner=None, nickname=None, activation="none", architecture="article", finished=None):
    return Run(
        run_id=run_id,
        created_at=0.0,
        finished_at=float(run_id) if finished is None else finished,
        status="finished",
        label=f"run {run_id}",
        config={"architecture": architecture, "activation": activation, "hidden_units": [params], "dropout": 0.5},
        params=params,
        engine="numpy",
        device="CPU",
        duration_s=1.0,
        epochs_run=1,
        best_epoch=1,
        seconds_per_epoch=1.0,
        test_loss=0.5,
        test_accuracy=accuracy,
        test_precision=None,
        test_recall=None,
        evaluation=None,
        model_path=None,
        error=None,
        session_owner=owner,
        nickname=nickname,
    )


RUNS = [
    run(1, 0.80, 7850, owner="s1", nickname="Ada"),
    run(2, 0.84, 62000, owner="s1", nickname="Ada", activation="relu"),
    run(3, 0.84, 31000, owner="s2"),
    run(4, 0.70, 1000, owner="s3", nickname="Grace", architecture="mlp"),
    run(5, 0.75, 1000, owner="s2", nickname="Linus"),
    run(6, 0.60, 500),
]


def test_the_leaderboard_keeps_each_sessions_best_under_its_latest_nickname():
    """s2's 84% (smaller than Ada's 84%) leads under the nickname it took later; a run with no session stands alone."""
    table = board.leaderboard(RUNS)
    assert table["name"].tolist() == ["Linus", "Ada", "Grace", "Anonymous 1"]
    assert table["run"].tolist() == [3, 2, 4, 6]
    assert table["place"].tolist() == [1, 2, 3, 4]
    assert table["test accuracy"].tolist() == [0.84, 0.84, 0.70, 0.60]
    assert "s1" not in table.to_string() and "s2" not in table.to_string()  # Owner tokens are never shown.


def test_filters_by_architecture_and_activation():
    """Choosing 'relu' keeps Ada's ReLU run only; 'mlp' keeps Grace's; nothing chosen keeps all."""
    assert [r.run_id for r in board.filter_runs(RUNS, activations=["relu"])] == [2]
    assert [r.run_id for r in board.filter_runs(RUNS, architectures=["mlp"])] == [4]
    assert len(board.filter_runs(RUNS, [], [])) == len(RUNS)
    assert board.leaderboard([]).empty


def test_points_show_the_class_beside_the_article_and_alexnet():
    """The chart's frame has every class run, the article's results and AlexNet's 61 million parameters."""
    points = board.board_points(RUNS)
    assert (points["source"] == "the class").sum() == len(RUNS)
    assert (points["source"] == "AlexNet").sum() == 1 and points.loc[
        points["source"] == "AlexNet", "parameters"
    ].item() == 61_000_000
    assert (points["source"] == "the article").sum() >= 1


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EXPLORER_LECTURER_KEY", raising=False)
    return tmp_path


def finished(store: RunStore, owner: str, nickname: str | None, accuracy: float) -> int:
    run_id = store.start_run(
        label="r",
        config={"activation": "none"},
        params=7850,
        engine="numpy",
        device="CPU",
        session_owner=owner,
        nickname=nickname,
    )
    store.finish_run(
        run_id, status="finished", duration_s=1.0, epochs_run=1, evaluation={"accuracy": accuracy, "loss": 0.5}
    )
    return run_id


def test_the_board_page_shows_the_leaderboard_and_clears(data_dir):
    """The page lists the best run per nickname with a chart; Clear empties the board but keeps the runs."""
    store = RunStore(data_dir / "runs.sqlite")
    finished(store, "o" * 22, "Ada", 0.81)
    finished(store, "p" * 22, None, 0.79)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["name"].tolist() == ["Ada", "Anonymous 1"]
    assert len(at.get("vega_lite_chart")) == 1
    assert any("**2** of 2 runs" in block.value for block in at.markdown)
    next(button for button in at.button if button.label == "Clear").click().run()
    assert any("**0** of 0 runs" in block.value for block in at.markdown)
    assert len(store.list_runs()) == 2


def test_in_classroom_mode_only_the_lecturer_clears_the_board(data_dir, monkeypatch):
    """With a lecturer key, a student's board has no Clear button; the lecturer's has."""
    monkeypatch.setenv("EXPLORER_LECTURER_KEY", "owl-7-lantern")
    student = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not student.exception and not any(button.label == "Clear" for button in student.button)
    lecturer = AppTest.from_file(PAGE, default_timeout=60)
    lecturer.session_state["class_lecturer"] = True
    lecturer.run()
    assert any(button.label == "Clear" for button in lecturer.button)
