"""The app's training, evaluation, saving and classifying under KERAS_BACKEND=jax (what a GPU server runs).

Keras fixes its backend when it is first imported, so the work runs in one child process with
KERAS_BACKEND=jax on the CPU (JAX's CPU wheel is in the dev requirements). The child reports
plain numbers as JSON; this process (TensorFlow) checks them against its own runs of the same
models, so a GPU user never meets a code path that no test has run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "catdog" / "cat_chelsea.jpg"

CHILD = r"""
import json, sys


class NoTensorFlow:
    # The GPU machines have no TensorFlow: make it unimportable here too (Keras then skips it).
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: a GPU server has no TensorFlow)")
        return None


sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
import keras
from core.shallow.config import TrainingConfig
from core.shallow.jobs import JobQueue, split_data
from core.shallow.runs import RunStore

store = RunStore(sys.argv[1])
report = {"backend": keras.config.backend(), "runs": {}}
configs = {
    "numpy": TrainingConfig(hidden_units=(12,), dropout=0.5, learning_rate=3e-3, train_limit=600, epochs=2),
    "keras": TrainingConfig(hidden_units=(12,), activation="relu", dropout=0.5, learning_rate=3e-3,
                            train_limit=600, epochs=2, engine="keras"),
    "jax": TrainingConfig(architecture="mlp", hidden_units=(32,), activation="elu", dropout=0.3,
                          learning_rate=3e-3, train_limit=600, epochs=2, engine="jax"),
}
queue = JobQueue(store=store)
for name, config in configs.items():
    progress = queue.submit(config).wait(600)
    run = store.get_run(progress.run_id) if progress.run_id else None
    entry = {"status": progress.status, "error": progress.error}
    if run is not None:
        _, _, (x_test, y_test) = split_data(config)
        reloaded = keras.saving.load_model(run.model_path)
        probabilities = np.asarray(reloaded.predict(x_test.reshape(-1, 28, 28, 1), verbose=0))
        entry.update(engine=run.engine, device=run.device, test_accuracy=run.test_accuracy,
                     model_path=run.model_path, reloaded_accuracy=float(np.mean(probabilities.argmax(1) == y_test)),
                     first_probabilities=probabilities[:5].tolist())
    report["runs"][name] = entry
queue.close()

from core.catdog.classify import Classifier
analysis = Classifier().analyse(sys.argv[2])
report["catdog"] = {"label": analysis.prediction.label, "p_cat": analysis.prediction.p_cat,
                    "top5": analysis.prediction.top5, "heatmap": analysis.heatmap.tolist()}
report["tensorflow_imported"] = "tensorflow" in sys.modules
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def jax_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jax-backend")
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder / "runs.sqlite"), str(PHOTO)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_child_really_ran_keras_on_jax_without_tensorflow(jax_report):
    """Keras said its backend was jax, and everything ran with TensorFlow unimportable (a GPU box has none)."""
    assert jax_report["backend"] == "jax"
    assert jax_report["tensorflow_imported"] is False


@pytest.mark.parametrize("engine", ["numpy", "keras", "jax"])
def test_every_engine_trains_evaluates_and_saves_under_jax(jax_report, engine):
    """Each engine finishes, names itself and the backend, learns, and its saved model gives its test accuracy."""
    run = jax_report["runs"][engine]
    assert run["status"] == "finished", run["error"]
    assert run["engine"] == engine and "jax" in run["device"]
    assert run["test_accuracy"] > 0.5  # Ten classes: chance is 0.1.
    assert run["reloaded_accuracy"] == pytest.approx(run["test_accuracy"], abs=1e-4)


def test_a_model_saved_under_jax_loads_under_tensorflow(jax_report):
    """The .keras file a JAX server writes gives the same probabilities when TensorFlow's Keras reads it."""
    import keras

    from core.shallow.config import TrainingConfig
    from core.shallow.jobs import split_data

    run = jax_report["runs"]["keras"]
    model = keras.saving.load_model(run["model_path"])
    _, _, (x_test, _) = split_data(TrainingConfig(train_limit=600))
    probabilities = model.predict(x_test[:5].reshape(-1, 28, 28, 1), verbose=0)
    np.testing.assert_allclose(probabilities, np.array(run["first_probabilities"]), atol=1e-5)


def test_the_cat_or_dog_classifier_agrees_across_backends(jax_report):
    """The ported EfficientNet on JAX calls the cat a cat, with TensorFlow's probabilities and heatmap."""
    from core.catdog.classify import Classifier

    ours = Classifier().analyse(str(PHOTO))
    theirs = jax_report["catdog"]
    assert theirs["label"] == ours.prediction.label == "cat"
    assert theirs["p_cat"] == pytest.approx(ours.prediction.p_cat, abs=1e-4)
    assert [name for name, _ in theirs["top5"]] == [name for name, _ in ours.prediction.top5]
    np.testing.assert_allclose(np.array(theirs["heatmap"]), ours.heatmap, atol=1e-3)
