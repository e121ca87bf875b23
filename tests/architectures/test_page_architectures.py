"""The Architectures page through Streamlit's AppTest: filters, charts, the user's runs, the parameter check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import streamlit as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

import core.architectures.models
import core.shallow.runs
from core.labs import ROOT

PAGE = str(ROOT / "pages" / "architectures" / "lab.py")


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts without the page's cached results or parameter check."""
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def open_page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def chart_specs(at: AppTest) -> list[dict]:
    specs = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        frames = [convert_arrow_bytes_to_pandas_df(dataset.data.data) for dataset in chart.proto.datasets]
        spec["points"] = [
            {name: (None if value != value else value) for name, value in record.items()}
            for frame in frames
            for record in frame.to_dict("records")
        ]
        specs.append(spec)
    return specs


def chart_titled(at: AppTest, title: str) -> dict:
    return next(spec for spec in chart_specs(at) if spec["title"]["text"].startswith(title))


def table_with(at: AppTest, column: str):
    """The first table on the page that has `column`."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def chart_points(spec: dict) -> list[dict]:
    """The rows a chart plots (Streamlit ships them as Arrow tables beside the spec)."""
    return spec["points"]


def test_stored_results_show_without_tensorflow():
    """Opening the page lists all stored results and draws four charts, and TensorFlow stays unimported."""
    code = (
        "import json, sys; from streamlit.testing.v1 import AppTest; "
        f"at = AppTest.from_file({PAGE!r}, default_timeout=60).run(); "
        "print(json.dumps({'error': bool(at.exception), 'rows': len(at.dataframe[0].value), "
        "'charts': len(at.get('vega_lite_chart')), "
        "'tensorflow': any(m in sys.modules for m in ('tensorflow', 'keras'))}))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    shown = json.loads(completed.stdout.strip().splitlines()[-1])
    assert shown == {"error": False, "rows": 23, "charts": 4, "tensorflow": False}


def test_filters_narrow_table_and_charts():
    """Choosing VGG16 + SGD leaves its two MNIST rows, in the table and in the accuracy chart."""
    at = open_page()
    at.multiselect(key="arch_models").set_value(["VGG16"])
    at.multiselect(key="arch_optimizers").set_value(["SGD"]).run()
    assert not at.exception
    table = table_with(at, "configuration")
    assert sorted(table["test_accuracy"]) == [0.9914, 0.9969]
    assert set(table["dataset"]) == {"MNIST"}
    assert any(caption.value.startswith("2 of 23 results. Datasets: MNIST: VGG16.") for caption in at.caption)
    accuracy = chart_titled(at, "Reported accuracy per configuration")
    assert accuracy["title"]["subtitle"] == "MNIST: VGG16"
    assert sorted(point["headline_accuracy"] for point in chart_points(accuracy)) == [0.9914, 0.9969]


def test_weights_filter_and_empty_selection():
    """ImageNet weights keep VGG16, ResNet50 and DenseNet121; an impossible combination says so."""
    at = open_page()
    at.multiselect(key="arch_weights").set_value(["ImageNet"]).run()
    assert set(table_with(at, "configuration")["model"]) == {"VGG16", "ResNet50", "DenseNet121"}
    at.multiselect(key="arch_models").set_value(["DenseNet121"])
    at.multiselect(key="arch_optimizers").set_value(["SGD"]).run()
    assert not at.exception
    assert "No stored result matches these filters" in at.info[0].value
    assert not at.get("vega_lite_chart")


def test_train_versus_test_switches_to_loss():
    """The over/under-fitting chart plots train against test accuracy, or loss when asked, on MNIST."""
    at = open_page()
    accuracy = chart_titled(at, "Train vs test")
    assert accuracy["title"]["text"] == "Train vs test accuracy"
    assert accuracy["title"]["subtitle"].startswith("MNIST: VGG16, ResNet50")
    at.radio(key="arch_fit_measure").set_value("loss").run()
    loss = chart_titled(at, "Train vs test")
    assert loss["title"]["text"] == "Train vs test loss"
    assert 0.6885 in {point.get("test_loss") for point in chart_points(loss)}
    at.multiselect(key="arch_models").set_value(["DenseNet121"]).run()
    assert any("Only the VGG16 and ResNet50 tables" in info.value for info in at.info)


def test_user_runs_join_the_parameter_chart(monkeypatch):
    """Saved shallow-net runs appear as crosses on the log-scale chart, with a caption counting them."""
    runs = [{"run_id": 7, "label": "392 neurons, none, dropout 0.8", "params": 3_074_074, "test_accuracy": 0.861}]
    monkeypatch.setattr(
        core.shallow.runs, "list_finished_runs", lambda db_path=None: [{**runs[0], "dataset": "Fashion-MNIST"}]
    )
    at = open_page()
    spec = chart_titled(at, "Accuracy against parameter count")
    assert spec["encoding"]["x"]["scale"]["type"] == "log"
    mine = [point for point in chart_points(spec) if point["who"] == "your run"]
    assert mine == [
        {
            "label": "your run #7: 392 neurons, none, dropout 0.8",
            "model": "your shallow nets",
            "dataset": "Fashion-MNIST",
            "parameters": 3_074_074,
            "accuracy": 0.861,
            "measure": "test accuracy",
            "who": "your run",
            "parameters from": "your run",
        }
    ]
    assert any("your 1 saved shallow-net run(s)" in caption.value for caption in at.caption)


def test_saved_cnn_runs_join_the_parameter_chart_as_diamonds(monkeypatch, tmp_path):
    """A shallow CNN and a dense net saved in the run store are both plotted: the CNN as a diamond
    among "your shallow CNNs", with its own parameter count and test accuracy."""
    from core.shallow.config import TrainingConfig, count_params
    from core.shallow.runs import RunStore

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    store = RunStore()
    for config, accuracy in ((TrainingConfig(architecture="cnn", filters=4), 0.871), (TrainingConfig(), 0.85)):
        run_id = store.start_run(
            label=config.label, config=config.to_dict(), params=count_params(config), engine="keras", device="CPU"
        )
        evaluation = {"accuracy": accuracy, "loss": 0.4, "precision": 0.9, "recall": 0.8}
        store.finish_run(run_id, status="finished", duration_s=1.0, epochs_run=1, evaluation=evaluation)
    at = open_page()
    mine = {
        point["who"]: point for point in chart_points(chart_titled(at, "Accuracy against")) if "run" in point["who"]
    }
    assert mine["your CNN run"]["label"] == "your run #1: CNN 4 filters 3x3, none, dropout 0.8"
    assert mine["your CNN run"]["model"] == "your shallow CNNs"
    assert mine["your CNN run"]["parameters"] == 4 * 9 + 4 + 14 * 14 * 4 * 10 + 10
    assert mine["your CNN run"]["accuracy"] == 0.871
    assert mine["your run"]["model"] == "your shallow nets"
    assert any("1 of them shallow CNNs (diamonds)" in caption.value for caption in at.caption)


def test_without_runs_the_chart_says_where_they_will_appear(monkeypatch):
    """With no training core (ImportError) or no runs, no crosses are drawn and a caption explains."""
    monkeypatch.setitem(sys.modules, "core.shallow.runs", None)
    at = open_page()
    assert not any(p["who"] == "your run" for p in chart_points(chart_titled(at, "Accuracy against")))
    assert any("will appear here as crosses" in caption.value for caption in at.caption)
    # The real module back in place (deleting the entry would make the page import a fresh,
    # unpatched copy that reads whatever runs the suite has saved by then).
    monkeypatch.setitem(sys.modules, "core.shallow.runs", core.shallow.runs)
    monkeypatch.setattr(core.shallow.runs, "list_finished_runs", lambda db_path=None: [])
    at = open_page()
    assert any("No saved shallow-net runs yet" in caption.value for caption in at.caption)


def test_parameter_check_runs_on_request_and_shows_ours_beside_the_article(monkeypatch):
    """Nothing is built until the button; then our counts, the article's, a verdict and layer summaries show."""
    real_report = core.architectures.models.parameter_report
    built = []

    def small_report():
        # The two shallow nets build in well under a second; the page logic is the same for all.
        built.append(True)
        return real_report(["shallow_1x784", "shallow_2x78"])

    monkeypatch.setattr(core.architectures.models, "parameter_report", small_report)
    at = open_page()
    assert not built
    assert not any(selectbox.label == "Layer summary of" for selectbox in at.selectbox)
    at.button[0].click().run()
    assert not at.exception and built
    check = table_with(at, "verdict")
    first = check.iloc[0]
    assert (first["ours: total"], first["article: total"]) == (6_148_138, 6_148_138)
    assert first["verdict"].startswith("total matches")
    assert check.iloc[1]["verdict"] == "the article gives no count"
    parameters = chart_titled(at, "Accuracy against parameter count")
    ours = {p["parameters"] for p in chart_points(parameters) if p["parameters from"] == "our build"}
    assert ours == {617_848}  # Of the two, only the 2-layer net of 78 has a stored result to plot.
    assert chart_titled(at, "Depth against parameters")
    summary = table_with(at, "output_shape")
    assert list(summary["parameters"]) == [0, 1568, 0, 0, 6_146_570]
    at.selectbox(key="arch_summary_model").set_value("Shallow dense, 2 hidden layers of 78").run()
    names = list(table_with(at, "output_shape")["name"])
    assert names == ["image", "hidden_1", "dropout_1", "hidden_2", "dropout_2", "flatten", "dense"]
    assert len(built) == 1  # The rerun used the cached check.
