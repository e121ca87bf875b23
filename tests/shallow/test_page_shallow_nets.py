"""The shallow-net lab through Streamlit's AppTest: settings, the link, live training, stop, saved runs.

AppTest runs the page script in this process, so the page's jobs run in this process's
queue and save to a temporary `EXPLORER_DATA_DIR`. Runs are tiny (a few hundred images).
"""

from __future__ import annotations

import threading
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.labs import ROOT
from core.shallow import view
from core.shallow.jobs import default_queue

PAGE = str(ROOT / "pages" / "shallow" / "lab.py")


@pytest.fixture(scope="module", autouse=True)
def saved_runs_folder(tmp_path_factory):
    """A fresh saved-runs folder for the page's queue (set before the queue makes its store)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_DATA_DIR", str(tmp_path_factory.mktemp("shallow-runs")))
        queue = default_queue()
        for job in queue.active():
            queue.cancel(job.id)
        queue.store = None
        yield


def open_page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def shown_text(at: AppTest) -> str:
    parts = [element.value for element in [*at.markdown, *at.subheader, *at.caption, *at.warning, *at.error]]
    return "\n".join(str(part) for part in parts)


def metric(at: AppTest, label: str) -> str:
    return next(element.value for element in at.metric if element.label == label)


def wait_for(at: AppTest, condition, timeout: float = 120.0) -> AppTest:
    """Reruns the page (as the live fragment would) until `condition(at)` holds."""
    deadline = time.monotonic() + timeout
    while not condition(at):
        assert time.monotonic() < deadline, f"gave up waiting; the page shows:\n{shown_text(at)}"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    return at


def job_status(at: AppTest) -> str:
    job = default_queue().get(at.session_state["sn_job"])
    return job.snapshot().status


def test_settings_show_the_estimate_and_go_into_the_address():
    """Two layers of 78 neurons at 50% dropout show the article's 617,848 parameters and land in the URL."""
    at = open_page()
    assert not at.exception
    assert at.title[0].value == "Shallow-net lab"
    assert "617,848" not in [element.value for element in at.metric]
    at.segmented_control(key="sn_layers").set_value(2).run()
    at.pills(key="sn_units_pick").set_value(78).run()
    at.slider(key="sn_dropout").set_value(0.5).run()
    assert [at.number_input(key=f"sn_units_{layer}").value for layer in (1, 2)] == [78, 78]
    assert metric(at, "Parameters") == "617,848"
    assert at.query_params["units"] == "78,78"
    assert at.query_params["dropout"] == "0.5"
    assert "Trains on the CPU" in shown_text(at) or "Trains on NVIDIA" in shown_text(at)


def test_the_cnn_shows_filters_kernel_and_blocks_instead_of_neurons():
    """Choosing the shallow CNN swaps layers and neurons for filters, kernel side and blocks; the
    estimate counts the CNN (15,770 for 8 filters 3 x 3, 10,330 for 16 filters in two blocks) and the
    address carries the CNN's settings only."""
    at = open_page()
    at.radio(key="sn_architecture").set_value("cnn").run()
    assert not at.exception
    keys = {element.key for element in [*at.number_input, *at.segmented_control]}
    assert {"sn_filters", "sn_kernel_size", "sn_conv_blocks"} <= keys
    assert not keys & {"sn_layers", "sn_units_1"}
    assert metric(at, "Parameters") == "15,770"
    assert metric(at, "Per epoch (estimate)")
    assert "with the **keras** engine" in shown_text(at)
    assert at.query_params["arch"] == "cnn" and "units" not in at.query_params
    at.number_input(key="sn_filters").set_value(16).run()
    at.segmented_control(key="sn_conv_blocks").set_value(2).run()
    assert metric(at, "Parameters") == f"{16 * 9 + 16 + 16 * 16 * 9 + 16 + 7 * 7 * 16 * 10 + 10:,}" == "10,330"
    assert at.query_params["filters"] == "16" and at.query_params["blocks"] == "2"
    at.radio(key="sn_architecture").set_value("article").run()
    assert at.number_input(key="sn_units_1").value and "filters" not in at.query_params


def test_a_shared_cnn_link_opens_that_cnn_and_names_a_bad_value():
    """?arch=cnn&filters=4&kernel=5&blocks=2 fills the CNN's widgets; filters=99 is named in a warning."""
    at = open_page(arch="cnn", filters="4", kernel="5", blocks="2", activation="relu")
    assert not at.exception and not at.warning
    assert at.number_input(key="sn_filters").value == 4
    assert at.segmented_control(key="sn_kernel_size").value == 5
    assert at.segmented_control(key="sn_conv_blocks").value == 2
    assert metric(at, "Parameters") == f"{25 * 4 + 4 + 25 * 4 * 4 + 4 + 7 * 7 * 4 * 10 + 10:,}"
    bad = open_page(arch="cnn", filters="99", kernel="4")
    warnings = " ".join(warning.value for warning in bad.warning)
    assert "`filters=99` from the link" in warnings and "1 to 64" in warnings
    assert "`kernel=4` from the link" in warnings
    assert bad.number_input(key="sn_filters").value == 8


def test_a_shared_link_fills_the_form_and_reports_what_it_ignores():
    """?units=392&activation=relu&images=all fills the form; a bad value is named, not fatal."""
    at = open_page(units="392", activation="relu", images="all", dropout="0.8", epochs="oops")
    assert not at.exception
    assert at.number_input(key="sn_units_1").value == 392
    assert at.selectbox(key="sn_activation").value == "relu"
    assert at.toggle(key="sn_subset").value is False
    assert at.number_input(key="sn_epochs").value == 20
    assert any("epochs=oops" in warning.value for warning in at.warning)
    assert metric(at, "Parameters") == "3,074,074"


def test_a_preset_loads_the_article_configuration_and_quick_demo_shrinks_it():
    """The article's best model loads as published; Quick demo keeps the network on a subset."""
    at = open_page()
    at.pills(key="sn_preset").set_value("392-none-d0.8").run()
    assert at.number_input(key="sn_units_1").value == 392
    assert at.slider(key="sn_dropout").value == 0.8
    assert at.toggle(key="sn_subset").value is False
    assert at.number_input(key="sn_epochs").value == 377
    assert any("86.36%" in str(frame.value.to_dict()) for frame in at.dataframe)
    next(button for button in at.button if button.label.startswith("Quick demo")).click().run()
    assert at.toggle(key="sn_subset").value is True
    assert at.number_input(key="sn_train_limit").value == 5000
    assert at.number_input(key="sn_units_1").value == 392


def test_a_cnn_preset_loads_the_measured_cnn_and_says_it_was_measured_here():
    """The CNN presets sit apart from the article's, load their CNN into the form and say where their
    numbers come from (this machine, not the article)."""
    from core.shallow.config import cnn_presets

    at = open_page()
    preset = next(preset for preset in cnn_presets() if "AlexNet" in preset.title)
    assert "the article trains no CNN" in at.pills(key="sn_cnn_preset").label
    at.pills(key="sn_cnn_preset").set_value(preset.id).run()
    assert not at.exception
    assert at.radio(key="sn_architecture").value == "cnn"
    assert at.number_input(key="sn_filters").value == preset.config.filters
    assert at.number_input(key="sn_epochs").value == preset.config.epochs
    assert any("as it was trained here" in message.value for message in at.success)
    shown = [frame.value for frame in at.dataframe if "test accuracy (here)" in frame.value.columns]
    assert f"{preset.measured['test_accuracy']:.2%}" in shown[0]["test accuracy (here)"].tolist()
    assert any("bench cnn" in caption.value for caption in at.caption)


def test_refused_settings_show_the_reason_and_disable_start():
    """A batch larger than the subset, or a network too big for this machine, shows why and disables Start."""
    at = open_page(images="100", batch="64")
    assert not at.warning
    assert at.number_input(key="sn_train_limit").value == 100
    at.number_input(key="sn_train_limit").set_value(50).run()
    assert any("batch size must be 1 to 50" in error.value for error in at.error)
    assert next(button for button in at.button if button.label == "Start training").disabled
    huge = open_page(units="4096,4096,4096", images="all", batch="2048")
    assert any("GiB" in error.value or "epoch would take" in error.value for error in huge.error)
    assert next(button for button in huge.button if button.label == "Start training").disabled


def test_a_tiny_run_trains_live_then_shows_results_and_is_saved():
    """Start a 300-image, 1-epoch run: curves and test results appear, the job is in the URL, the run is saved."""
    at = open_page(images="300", epochs="1", units="10", lr="0.01")
    next(button for button in at.button if button.label == "Start training").click().run()
    assert not at.exception
    job_id = at.session_state["sn_job"]
    assert at.query_params["job"] == job_id
    wait_for(at, lambda at: any(header.value == "Results on the 10,000 test images" for header in at.subheader))
    assert job_status(at) == "finished"
    wait_for(at, lambda at: metric(at, "Epoch") == "1 / 1")  # The last progress message may trail the results.
    accuracy = float(metric(at, "Test accuracy").rstrip("%")) / 100
    assert accuracy > 0.2  # Ten classes: chance is 10%.
    assert any("probability above 0.5" in caption.value and "top class" in caption.value for caption in at.caption)
    note = next(expander for expander in at.expander if expander.label == "How precision and recall are computed")
    assert "Precision()" in note.markdown[0].value
    assert len(at.get("vega_lite_chart")) >= 3  # Loss, accuracy, confusion matrix.
    per_class = next(frame.value for frame in at.dataframe if "support" in frame.value.columns)
    assert per_class["support"].sum() == 10000
    cells = at.selectbox(key="sn_job_cell")
    assert "predicted as" in cells.format_func(cells.value)

    # A returning user (a new session with the same link) finds the job and its results.
    back = open_page(job=job_id)
    assert back.session_state["sn_job"] == job_id
    assert any(header.value == "Results on the 10,000 test images" for header in back.subheader)

    # The run is saved: open it under Saved runs, with its downloads, then delete it.
    run_id = default_queue().get(job_id).snapshot().run_id
    saved = open_page(run=str(run_id))
    saved.session_state["sn_tab"] = "Saved runs"
    saved.run()
    assert saved.selectbox(key="sn_open_run").value == run_id
    assert saved.query_params["run"] == str(run_id)
    labels = [button.label for button in saved.get("download_button")]
    assert labels == ["Model (.keras)", "History (CSV)"]
    assert metric(saved, "Test accuracy").endswith("%")
    next(button for button in saved.button if button.label.startswith("Yes, delete run")).click().run()
    assert any("No saved runs yet" in info.value for info in saved.info)
    assert all(run.run_id != run_id for run in default_queue().store.list_runs())


def test_a_tiny_cnn_trains_from_the_page_and_is_saved_as_a_cnn():
    """A 2-filter CNN on 300 images for one epoch trains with Keras from the page, shows its test results
    and is saved with its CNN settings."""
    at = open_page(arch="cnn", filters="2", images="300", epochs="1", lr="0.01", activation="relu", dropout="0.2")
    next(button for button in at.button if button.label == "Start training").click().run()
    assert not at.exception
    wait_for(at, lambda at: any(header.value == "Results on the 10,000 test images" for header in at.subheader))
    job = default_queue().get(at.session_state["sn_job"])
    progress = job.snapshot()
    assert progress.status == "finished" and progress.engine == "keras"
    assert float(metric(at, "Test accuracy").rstrip("%")) > 20  # Ten classes: chance is 10%.
    run = default_queue().store.get_run(progress.run_id)
    assert run.label == "CNN 2 filters 3x3, ReLU, dropout 0.2" and run.config["filters"] == 2 and run.has_model


def test_stop_keeps_what_was_learned_and_a_second_tab_does_not_duplicate():
    """A second session sees the running job and is asked before queueing; Stop ends the first run."""
    first = open_page(images="2000", epochs="200", units="78", batch="16")
    next(button for button in first.button if button.label == "Start training").click().run()
    wait_for(first, lambda at: job_status(at) == "running")

    second = open_page(images="300", epochs="1")
    assert "Training on this server now" in shown_text(second)
    assert any(button.label == "Watch" for button in second.button)
    next(button for button in second.button if button.label == "Start training").click().run()
    assert any("busy" in warning.value for warning in second.warning)
    next(button for button in second.button if button.label == "Queue mine anyway").click().run()
    assert job_status(second) == "queued"
    waiting_line = next(bar.proto.text for bar in second.get("progress"))
    assert waiting_line.startswith("Waiting in the queue: number 1 in line, starts in about ")
    next(button for button in second.button if button.label == "Cancel").click().run()
    assert job_status(second) == "cancelled"

    next(button for button in first.button if button.label.startswith("Stop")).click().run()
    wait_for(first, lambda at: job_status(at) == "stopped")
    wait_for(first, lambda at: any(header.value == "Results on the 10,000 test images" for header in at.subheader))
    assert metric(first, "Test accuracy").endswith("%")


def test_an_unwritable_data_folder_gives_a_message_on_start_and_saved_runs(tmp_path):
    """With a data folder that cannot be created, Start and Saved runs say why instead of a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    queue = default_queue()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_DATA_DIR", str(blocker / "data"))
        patch.setattr(queue, "store", None)
        at = open_page(images="300", epochs="1")
        next(button for button in at.button if button.label == "Start training").click().run()
        assert not at.exception
        assert any("Cannot open the saved runs" in error.value and "a-file" in error.value for error in at.error)
        at.session_state["sn_tab"] = "Saved runs"
        at.run()
        assert not at.exception
        assert any("EXPLORER_DATA_DIR" in error.value for error in at.error)
    assert queue.active() == []


@pytest.mark.parametrize(
    ("key", "value", "widget", "kept"),
    [
        ("dropout", "0.995", "sn_dropout", 0.8),
        ("patience", "6000", "sn_patience", 50),
        ("seed", "-1", "sn_seed", 0),
        ("units", "5000", "sn_units_1", 78),
        ("val", "0.7", "sn_validation_split", 0.1),
        ("images", "59500", "sn_train_limit", 5000),
    ],
)
def test_an_out_of_range_link_value_gets_the_link_warning(key, value, widget, kept):
    """A link value outside the setting's range is named in the page's link warning, with the range,
    and the widget keeps the page's default instead of crashing or silently changing it."""
    at = open_page(**{key: value})
    assert not at.exception
    warnings = [warning.value for warning in at.warning]
    assert any(f"`{key}={value}` from the link" in warning and " to " in warning for warning in warnings), warnings
    assert at.number_input(key=widget).value == kept if widget != "sn_dropout" else at.slider(key=widget).value == kept


def test_every_value_the_config_accepts_fits_its_widget():
    """Dropout 0.96 and 0.99, patience 5000, the largest seed and the largest subset open without a warning."""
    at = open_page(dropout="0.96", patience="5000", seed=str(2**31 - 1), images="59400", val="0.01")
    assert not at.exception and not at.warning
    assert at.slider(key="sn_dropout").value == 0.96
    assert at.number_input(key="sn_patience").value == 5000
    assert at.number_input(key="sn_seed").value == 2**31 - 1
    assert at.number_input(key="sn_train_limit").value == 59400
    assert not open_page(dropout="0.99").exception


@pytest.mark.parametrize("linked", ["²", "٣", "-4", "99999999999999999999999", "x"])
def test_a_run_link_that_names_no_saved_run_is_reported(linked):
    """?run=² (a digit to isdigit() that int() refuses) and other bad run numbers give a warning on Saved runs."""
    default_queue().run_store().start_run(label="a run", config={}, params=1, engine="numpy", device="cpu")
    at = open_page(run=linked)
    at.session_state["sn_tab"] = "Saved runs"
    at.run()
    assert not at.exception
    assert any(f"`run={linked}`" in warning.value for warning in at.warning)
    assert at.selectbox(key="sn_open_run").value is None


def test_use_these_settings_loads_a_saved_run_and_reports_values_out_of_range():
    """ "Use these settings" on a run saved with dropout 0.97 loads it; a patience of 6000 (an older,
    looser rule) is reported with the range and the page's own patience is kept."""
    config = view.PAGE_DEFAULT.replace(dropout=0.97).to_dict() | {"patience": 6000}
    run_id = (
        default_queue().run_store().start_run(label="old run", config=config, params=1, engine="numpy", device="cpu")
    )
    at = open_page(run=str(run_id))
    at.session_state["sn_tab"] = "Saved runs"
    at.run()
    next(button for button in at.button if button.label == "Use these settings").click().run()
    assert not at.exception
    assert at.slider(key="sn_dropout").value == 0.97
    assert at.number_input(key="sn_patience").value == view.PAGE_DEFAULT.patience
    assert any(f"run #{run_id}" in warning.value and "1 to 5,000" in warning.value for warning in at.warning)


def rerun_until(at: AppTest, shown, seconds: float = 20.0) -> AppTest:
    """Reruns the page (as the estimate's timer does in a browser) until `shown()` holds."""
    deadline = time.monotonic() + seconds
    while not shown():
        assert time.monotonic() < deadline, "the page never showed it"
        time.sleep(0.1)
        at.run()
        assert not at.exception
    return at


def test_the_estimate_is_the_timed_engine_times_the_batches_of_an_epoch(monkeypatch):
    """With a step timed at 0.5 s, the page default (5,000 images in batches of 128: 40 steps, plus 6,000
    validation images at 1 ms: 20 s + 6 s) shows 26 s per epoch and 9 min for its 20 epochs, and says so."""
    from core.shallow import calibration

    asked, measured = [], threading.Event()

    def timed(config, timeout=300):
        asked.append(config)
        measured.wait(30)  # Timing takes seconds; the page must not wait for it.
        return calibration.Calibration("numpy", 0.5, 1e-3, 1.0)

    monkeypatch.setattr(calibration, "calibrate_in_subprocess", timed)
    st.cache_resource.clear()  # The page's timer keeps timings per setting for the server's life.
    at = open_page()
    assert not at.exception
    assert "a first guess while a few real batches are timed here" in shown_text(at)  # At once, not after the timing.
    measured.set()
    at = rerun_until(at, lambda: metric(at, "Per epoch (estimate)") == "26 s")
    assert metric(at, "Whole run, at most") == "9 min"  # 520 s
    assert "timed on a few real batches of that engine here" in shown_text(at)
    # The page asked for its own setting's timing. (A timer an earlier test left behind may still
    # be working through its own queue, through the same patched function, on a slow machine.)
    assert calibration.speed_key(view.PAGE_DEFAULT) in asked


def test_the_first_guess_stands_in_when_timing_fails(monkeypatch):
    """If the timing process fails, the page still shows an estimate and says it is a first guess, and why."""
    from core.shallow import calibration

    def fails(config, timeout=300):
        raise RuntimeError("Timing a few batches failed: out of memory")

    monkeypatch.setattr(calibration, "calibrate_in_subprocess", fails)
    st.cache_resource.clear()
    at = open_page()
    assert not at.exception
    at = rerun_until(at, lambda: "a first guess (Timing a few batches failed: out of memory)" in shown_text(at))
    assert metric(at, "Per epoch (estimate)")


def test_the_projector_layout_keeps_explanations_and_extra_settings_one_click_away():
    """Presentation mode moves the intro and the rarer settings into expanders and the estimate into one line."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["present"] = True
    at.query_params["units"] = "78"
    at.run()
    assert not at.exception
    expanders = [expander.label for expander in at.expander]
    assert expanders[0].startswith("About this lab")
    assert any(label.startswith("More settings") for label in expanders)
    assert not any(element.label == "Parameters" for element in at.metric)
    assert any("parameters" in caption.value and "per epoch" in caption.value for caption in at.caption)
    assert at.number_input(key="sn_units_1").value == 78 and at.selectbox(key="sn_optimizer").value
    normal = open_page()
    assert not any(label.startswith("More settings") for label in [expander.label for expander in normal.expander])
