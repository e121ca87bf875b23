"""The shallow-net page's UI-free helpers (`core.shallow.view`) and its charts (`core.shallow.charts`)."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow import charts, view
from core.shallow.config import TrainingConfig
from core.shallow.evaluation import evaluate_predictions
from core.shallow.jobs import Progress


def test_default_settings_make_an_empty_query():
    """The page's defaults need no parameters, so a plain link opens the plain page."""
    assert view.config_to_query(view.PAGE_DEFAULT) == {}
    assert view.config_from_query({}) == (view.PAGE_DEFAULT, [])


@pytest.mark.parametrize(
    "config",
    [
        TrainingConfig(hidden_units=(78, 78), dropout=0.5),
        TrainingConfig(
            architecture="mlp", hidden_units=(392,), activation="prelu", optimizer="sgd", learning_rate=3e-3
        ),
        view.PAGE_DEFAULT.replace(train_limit=300, batch_size=32, epochs=1, patience=3, seed=7, validation_split=0.2),
        view.PAGE_DEFAULT.replace(engine="keras", mixed_precision=True),
        TrainingConfig(architecture="cnn", filters=16, kernel_size=5, conv_blocks=2, activation="relu", dropout=0.2),
        view.PAGE_DEFAULT.replace(architecture="cnn", filters=1),
    ],
)
def test_query_round_trip(config):
    """Writing a configuration into the address and reading it back gives the same configuration."""
    query = view.config_to_query(config)
    assert all(isinstance(value, str) for value in query.values())
    assert view.config_from_query(query) == (config, [])


def test_query_values_are_readable():
    """A lecturer can write a link by hand: comma-separated layers, 'all' images, plain numbers."""
    query = view.config_to_query(TrainingConfig(hidden_units=(78, 78), dropout=0.5, epochs=377))
    assert query == {"units": "78,78", "dropout": "0.5", "images": "all", "epochs": "377"}


def test_a_cnn_link_carries_the_cnn_settings_and_no_neurons():
    """A CNN's link names its filters, kernel and blocks, never neurons; a dense net's never filters."""
    cnn = view.PAGE_DEFAULT.replace(architecture="cnn", filters=12, kernel_size=5, conv_blocks=2)
    assert view.config_to_query(cnn) == {"arch": "cnn", "filters": "12", "kernel": "5", "blocks": "2"}
    assert "filters" not in view.config_to_query(view.PAGE_DEFAULT.replace(hidden_units=(7,)))
    saved, problems = view.config_from_saved(cnn.to_dict(), run_id=3)
    assert (saved, problems) == (cnn, [])


def test_bad_values_in_a_link_are_named_and_the_rest_is_kept():
    """An unreadable or impossible value is reported; the other settings of the link still apply."""
    config, problems = view.config_from_query({"units": "78,x", "dropout": "1.5", "activation": "relu"})
    assert config.activation == "relu"
    assert config.hidden_units == view.PAGE_DEFAULT.hidden_units
    assert config.dropout == view.PAGE_DEFAULT.dropout
    assert len(problems) == 2
    assert any("units=78,x" in problem for problem in problems)
    assert any("dropout=1.5" in problem and "0 to 0.99" in problem for problem in problems)


def test_settings_that_only_work_together_are_read_together():
    """A small subset with a small batch is valid even though the subset alone clashes with batch 128."""
    config, problems = view.config_from_query({"images": "50", "batch": "16"})
    assert problems == []
    assert (config.train_limit, config.batch_size) == (50, 16)


def test_curve_frame_includes_the_epoch_in_progress():
    """Finished epochs give train and validation points; the running epoch adds a fractional train point."""
    history = [
        {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6, "seconds": 1.0},
        {"epoch": 2, "loss": 0.8, "accuracy": 0.6, "val_loss": 0.7, "val_accuracy": 0.7, "seconds": 1.0},
    ]
    progress = Progress(
        job_id="job", status="running", epoch=3, epochs=5, batch=10, batches_per_epoch=40,
        train_loss=0.75, train_accuracy=0.65, history=tuple(history),
    )  # fmt: skip
    point = view.live_point(progress)
    assert point == (2.25, 0.75, 0.65)
    frame = view.curve_frame(history, point)
    train_loss = frame[(frame.metric == "loss") & (frame.split == "train")]
    assert train_loss.epoch.tolist() == [1.0, 2.0, 2.25]
    assert train_loss.value.tolist() == [1.0, 0.8, 0.75]
    assert len(frame[frame.split == "validation"]) == 4


def test_no_live_point_between_epochs_or_when_done():
    """Right after an epoch ends (or once the job is done) there is no partial epoch to draw."""
    done = Progress(job_id="job", status="finished", epoch=1, batch=4, batches_per_epoch=4, history=({"epoch": 1},))
    assert view.live_point(done) is None
    waiting = Progress(job_id="job", status="queued", queue_position=2)
    assert view.live_point(waiting) is None
    assert view.status_line(waiting) == "Waiting in the queue: number 2 in line"


@pytest.fixture(scope="module")
def evaluation() -> dict:
    """A known evaluation: 3 shirts (class 6) of which 2 are taken for T-shirts (class 0), 2 correct trousers."""
    labels = np.array([6, 6, 6, 1, 1])
    probabilities = np.full((5, 10), 0.01)
    for row, predicted in enumerate([0, 0, 6, 1, 1]):
        probabilities[row, predicted] = 0.91
    probabilities[0, 0] = 0.95
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return evaluate_predictions(probabilities, labels).to_dict()


def test_confusion_cells_list_mistakes_first(evaluation):
    """The cell chooser offers the largest mistake first, then the correct cells, with counts."""
    cells = view.confusion_cells(evaluation)
    assert list(cells) == ["6,0", "1,1", "6,6"]
    assert cells["6,0"] == "Shirt predicted as T-shirt/top: 2 images"
    assert cells["6,6"] == "Shirt predicted as Shirt (correct): 1 images"


def test_confusion_frame_shares_are_per_true_class(evaluation):
    """Each true class's shares add up to 1 (classes with test images), and counts match the matrix."""
    frame = view.confusion_frame(evaluation["confusion"])
    assert len(frame) == 100
    shirts = frame[frame.true == "Shirt"]
    assert shirts["share"].sum() == pytest.approx(1.0)
    assert shirts.set_index("predicted")["count"]["T-shirt/top"] == 2


def test_comparison_with_the_article_for_the_same_network(evaluation):
    """The article's best network is compared with its published 86.36%; another network has no article column."""
    best = TrainingConfig(hidden_units=(392,), activation="none", dropout=0.8, train_limit=300)
    frame = view.comparison_frame(evaluation, best).set_index("metric")
    assert frame.loc["accuracy", "the article"] == 0.8636
    assert frame.loc["accuracy", "difference"] == pytest.approx(evaluation["accuracy"] - 0.8636)
    other = view.comparison_frame(evaluation, TrainingConfig(hidden_units=(5,))).set_index("metric")
    assert other["the article"].isna().all()


def test_accuracy_against_parameters_has_the_article_points_and_alexnet():
    """The article's results carry their hand-checked parameter counts; AlexNet sits at 86.43%."""
    frame = view.accuracy_params_frame([])
    article = frame[frame.source == "the article"]
    assert sorted(set(article.parameters)) == [617_848, 3_074_074, 3_228_130]
    alexnet = frame[frame.source == "AlexNet"].iloc[0]
    assert alexnet["test accuracy"] == 0.8643


def test_article_presets_table_shows_the_published_numbers():
    """The presets table shows 86.36% and 377 epochs for the best model, and a dash where the article is silent."""
    table = view.article_presets_frame().set_index("configuration")
    best = table.loc["392 neurons, no activation, 80% dropout (the article's best)"]
    assert (best["test accuracy"], best["epochs"], best["parameters"]) == ("86.36%", "377", "3,074,074")
    assert table.loc["392 neurons, no activation, 50% dropout", "test loss"] == "–"


def test_confusion_heatmap_lets_a_cell_be_clicked(evaluation):
    """The matrix chart carries a point selection on the true and predicted class indices."""
    spec = charts.confusion_heatmap(view.confusion_frame(evaluation["confusion"])).to_dict()
    params = spec.get("params", []) + [param for layer in spec["layer"] for param in layer.get("params", [])]
    assert params[0]["name"] == charts.CONFUSION_SELECTION
    assert params[0]["select"]["fields"] == ["true_index", "predicted_index"]


def test_presentation_mode_enlarges_charts():
    """Large charts are taller and use bigger axis fonts."""
    frame = view.curve_frame([{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6}])
    normal = charts.training_curve(frame, "accuracy", [("AlexNet", 0.8643)]).to_dict()
    large = charts.training_curve(frame, "accuracy", [("AlexNet", 0.8643)], large=True).to_dict()
    assert large["height"] > normal["height"]
    assert large["config"]["axis"]["labelFontSize"] >= 18
    assert len(normal["layer"]) == 3  # The curves, the reference rule and its label.


def test_enlarge_keeps_pixels_sharp():
    """Each pixel becomes a factor x factor block."""
    image = np.array([[0, 255]], dtype=np.uint8)
    assert view.enlarge(image, 2).tolist() == [[0, 0, 255, 255], [0, 0, 255, 255]]


def test_the_training_caption_names_the_ray_node_only_for_ray_jobs():
    """A job on Ray names its node beside the device; a local job's caption is as before."""
    local = Progress(job_id="a", device="CPU: x (tensorflow)", engine="numpy", best_epoch=2, executor="process")
    assert (
        view.training_caption(local) == "Training on CPU: x (tensorflow) with the numpy engine; best epoch so far: 2."
    )
    remote = Progress(job_id="b", device="GPU: H200 (jax)", engine="jax", executor="ray", node="gpu1 (10.0.0.5)")
    assert view.training_caption(remote) == (
        "Training on GPU: H200 (jax) (Ray node gpu1 (10.0.0.5)) with the jax engine; best epoch so far: –."
    )


def _d3_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Tick values as d3's scale.ticks places them: a step of 1, 2 or 5 times a power of ten."""
    import math

    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.7), key=lambda s: abs(s - raw))
    first = math.ceil(low / step)
    return [n * step for n in range(first, math.floor(high / step) + 1)]


@pytest.mark.parametrize("low, high", [(0.856, 0.869), (0.8640, 0.8652), (0.50, 0.95), (0.80, 0.87), (0.1, 0.99)])
def test_accuracy_axes_never_repeat_a_label(low, high):
    """The class board's and the curves' percent axes: every tick d3 would draw gets its own label."""
    from core.shallow.charts import percent_format

    decimals = int(percent_format([low, high]).strip(".%"))
    for count in (4, 5, 8):  # Vega's tick count follows the chart's height.
        labels = [f"{tick * 100:.{decimals}f}%" for tick in _d3_ticks(low, high, count)]
        assert len(set(labels)) == len(labels), labels
