""" "Inside the trained network" through AppTest: a real tiny run (live and saved) and saved CNNs built from the spec."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import kernels
from core.data import CLASS_NAMES, load_fashion_mnist
from core.labs import ROOT
from core.shallow.config import TrainingConfig, build_model
from core.shallow.jobs import default_queue
from core.shallow.runs import RunStore
from tests.shallow.test_page_shallow_nets import open_page, wait_for

PAGE = str(ROOT / "pages" / "shallow" / "lab.py")
TINY_LINEAR = TrainingConfig(
    hidden_units=(10,), dropout=0.5, learning_rate=1e-2, train_limit=300, batch_size=50, epochs=1
)


@pytest.fixture(scope="module", autouse=True)
def saved_runs_folder(tmp_path_factory):
    """A fresh saved-runs folder for the page's queue (set before the queue makes its store)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_DATA_DIR", str(tmp_path_factory.mktemp("inside-runs")))
        queue = default_queue()
        for job in queue.active():
            queue.cancel(job.id)
        queue.store = None
        yield


def inside_panel(at: AppTest):
    return next(expander for expander in at.expander if expander.label == "Inside the trained network")


def image_captions(block) -> list[str]:
    """Every caption of the pictures (st.image) inside `block` (the colour bars have none)."""
    return [picture.caption for element in block.get("image") for picture in element.proto.imgs if picture.caption]


def test_a_saved_linear_run_shows_its_exact_templates_and_chosen_neurons():
    """A real tiny run of the article's linear network, opened under Saved runs: ten templates with the biases
    and scale Keras' own weights give, then the neurons with the largest weights, and the user's choice."""
    import keras

    progress = default_queue().submit(TINY_LINEAR).wait(180)
    assert progress.status == "finished", progress.error
    run = default_queue().store.get_run(progress.run_id)
    at = open_page(run=str(run.run_id))
    at.session_state["sn_tab"] = "Saved runs"
    at.run()
    assert not at.exception, at.exception
    panel = inside_panel(at)

    # An independent reference: the templates from the weights Keras itself loads.
    (hidden, hidden_bias, classes, class_bias) = keras.models.load_model(run.model_path).get_weights()
    per_pixel = classes.reshape(784, 10, 10)
    templates = np.einsum("n,pnc->cp", hidden[0], per_pixel)
    biases = class_bias + np.einsum("n,pnc->c", hidden_bias, per_pixel)
    captions = image_captions(panel)
    assert captions[:10] == [f"{CLASS_NAMES[c]} (bias {biases[c]:+.2f})" for c in range(10)]
    scale = np.abs(templates).max()
    assert any(f"+{scale:.3g}: one colour scale for the ten templates" in c.value for c in panel.caption)

    strength = np.square(per_pixel).sum(axis=(0, 2))
    neurons = at.multiselect(key="sn_saved_inside_neurons")
    assert neurons.value == [int(j) for j in np.argsort(-strength)[:4]]
    neurons.set_value([9, 0]).run()
    at.selectbox(key="sn_saved_inside_class").set_value(3).run()
    assert not at.exception
    panel = inside_panel(at)
    assert image_captions(panel)[10:] == ["neuron 9", "neuron 0"]
    maps = per_pixel.reshape(28, 28, 10, 10)[:, :, [9, 0], 3]
    assert any(f"+{np.abs(maps).max():.3g}: one colour scale for these maps" in c.value for c in panel.caption)


def test_a_live_relu_run_shows_neuron_maps_but_no_templates():
    """After a live per-pixel ReLU run finishes, its results offer the neurons' maps; it does not collapse, so no
    templates."""
    at = open_page(images="300", epochs="1", units="6", lr="0.01", activation="relu")
    next(button for button in at.button if button.label == "Start training").click().run()
    wait_for(at, lambda at: any(e.label == "Inside the trained network" for e in at.expander))
    panel = inside_panel(at)
    assert not any("class templates" in m.value for m in panel.markdown)
    assert at.multiselect(key="sn_job_inside_neurons").options == [str(j) for j in range(6)]
    assert image_captions(panel) and all(c.startswith("neuron ") for c in image_captions(panel))


def show_inside_of(config: dict, model_path: str, evaluation: dict):
    from pages.shallow.inside import show_inside

    show_inside(config, model_path, "t", evaluation)


def saved_cnn(tmp_path, **changes):
    """A spec CNN trained for one short epoch on 300 images, saved the way the lab saves runs."""
    (x_train, y_train), _ = load_fashion_mnist()
    settings = TrainingConfig(**{"architecture": "cnn", "activation": "relu", "dropout": 0.2, "filters": 3, **changes})
    model = build_model(settings)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train[:300, ..., None] / 255.0, y_train[:300], epochs=1, batch_size=50, verbose=0)
    return settings, model, str(RunStore(tmp_path / "runs.sqlite").save_model(model, 1))


def test_a_saved_cnn_shows_its_kernels_as_pictures_and_numbers_and_feature_maps(tmp_path):
    """A one-block CNN: one kernel picture per filter, the chosen filter's numbers as Keras holds them, and the
    conv, activation and pool maps of the test image the user picks (by index, or from the mistakes)."""
    settings, model, path = saved_cnn(tmp_path, filters=4, kernel_size=5, activation="elu")
    evaluation = {"confident_mistakes": [{"index": 42}, {"index": 7}]}
    at = AppTest.from_function(show_inside_of, args=(settings.to_dict(), path, evaluation), default_timeout=60).run()
    assert not at.exception, at.exception
    captions = image_captions(inside_panel(at))
    assert captions[:4] == [f"filter {f}" for f in range(4)]
    kernel = model.get_layer("conv_1").get_weights()[0]
    at.selectbox(key="t_inside_filter").set_value(2).run()
    np.testing.assert_allclose(at.dataframe[0].value.to_numpy(), kernel[:, :, 0, 2].round(4), atol=1e-6)
    (button,) = at.get("link_button")  # "Open in the kernel lab" with this very kernel, through the address.
    query = dict(part.split("=", 1) for part in button.proto.url.split("?", 1)[1].split("&"))
    linked = kernels.kernel_from_query({"kernel": query["kernel"]})
    np.testing.assert_allclose(linked.matrix, kernel[:, :, 0, 2], atol=5e-4 * np.abs(kernel[:, :, 0, 2]).max())
    assert button.proto.url.startswith("kernels?") and "filter+2" in button.proto.url
    assert [m.value for m in at.markdown if m.value.startswith("`")] == [
        "`conv_1` (28 × 28 per filter)",
        "`activation_1` (28 × 28 per filter)",
        "`pool_1` (14 × 14 per filter)",
    ]

    x_test = load_fashion_mnist()[1][0]
    for how, index in (("index", 1234), ("gallery", 7)):
        if how == "index":
            at.number_input(key="t_inside_image").set_value(index).run()
        else:
            at.selectbox(key="t_inside_gallery").set_value(index).run()
        probabilities = model.predict(x_test[index : index + 1, ..., None] / 255.0, verbose=0)[0]
        expected = f"#{index}: {CLASS_NAMES[int(probabilities.argmax())]} {probabilities.max():.0%}"
        assert expected in image_captions(inside_panel(at))


def test_a_two_block_cnn_shows_each_input_channel_of_block_two(tmp_path):
    """Block 2's kernels read block 1's filters: the user picks the block and the input channel."""
    settings, model, path = saved_cnn(tmp_path, filters=3, conv_blocks=2, activation="prelu")
    at = AppTest.from_function(show_inside_of, args=(settings.to_dict(), path, {}), default_timeout=60).run()
    at.radio(key="t_inside_block").set_value(2).run()
    at.selectbox(key="t_inside_channel").set_value(1).run()
    at.selectbox(key="t_inside_filter").set_value(2).run()
    assert not at.exception, at.exception
    kernel = model.get_layer("conv_2").get_weights()[0]
    np.testing.assert_allclose(at.dataframe[0].value.to_numpy(), kernel[:, :, 1, 2].round(4), atol=1e-6)
    assert "`pool_2` (7 × 7 per filter)" in [m.value for m in at.markdown]


def test_a_broken_model_file_is_reported_and_the_page_stays_up(tmp_path):
    broken = tmp_path / "run-1.keras"
    broken.write_bytes(b"not a zip")
    at = AppTest.from_function(show_inside_of, args=(TINY_LINEAR.to_dict(), str(broken), {}), default_timeout=30).run()
    assert not at.exception
    assert "Cannot read the trained network" in at.error[0].value and "not a readable .keras model" in at.error[0].value
    at = AppTest.from_function(show_inside_of, args=(TINY_LINEAR.to_dict(), str(tmp_path / "gone.keras"), {}))
    assert "no saved model file" in at.run().info[0].value
