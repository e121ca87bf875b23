"""core.architectures.results: the stored results against the articles, and our rebuilt models' parameter counts."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.architectures import charts
from core.architectures.models import compare_with_claim, inspect_architecture
from core.architectures.results import (
    RESULTS_PATH,
    ResultFilter,
    datasets_caption,
    filter_rows,
    load_results,
    metric_meaning_rows,
    result_rows,
    validate_results,
)

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="module")
def stored():
    return load_results()


def by_id(stored, result_id: str) -> dict:
    return next(result for result in stored.results if result["id"] == result_id)


# The four-row tables of Hasan (2020): optimiser, weights -> train acc, train loss, test acc, test loss.
VGG16_TABLE = {
    ("Adam", "random"): (0.9872, 0.0399, 0.9924, 0.0243),
    ("SGD", "random"): (0.9884, 0.0371, 0.9914, 0.0258),
    ("Adam", "ImageNet"): (0.9857, 0.0658, 0.9807, 0.1523),
    ("SGD", "ImageNet"): (0.9977, 0.0076, 0.9969, 0.0116),
}
RESNET50_TABLE = {
    ("Adam", "random"): (0.9669, 0.1272, 0.9840, 0.0501),
    ("SGD", "random"): (0.9335, 0.3346, 0.9711, 0.0945),
    ("Adam", "ImageNet"): (0.9688, 0.1466, 0.9608, 0.6885),
    ("SGD", "ImageNet"): (0.9247, 0.3370, 0.9692, 0.1058),
}


@pytest.mark.parametrize(("model", "table"), [("VGG16", VGG16_TABLE), ("ResNet50", RESNET50_TABLE)])
def test_mnist_tables_are_stored_exactly(stored, model, table):
    """Each VGG16 / ResNet50 table row is stored with its four numbers and 15 epochs, batch 32, V100."""
    rows = [r for r in stored.results if r["model"] == model and r["epochs"] == 15]
    assert len(rows) == 4
    for row in rows:
        metrics = row["metrics"]
        expected = table[(row["optimizer"], row["weights"])]
        assert (
            metrics["train_accuracy"],
            metrics["train_loss"],
            metrics["test_accuracy"],
            metrics["test_loss"],
        ) == expected
        assert (row["dataset"], row["batch_size"]) == ("MNIST", 32)
        assert "V100" in row["hardware"]
        assert row["input_size"].startswith("32x32x3")


def test_resnet50_fifty_epoch_experiment_is_stored(stored):
    """The SGD-Nesterov run: 50 epochs, learning rate 0.005, train accuracy 0.9739233, loss 0.0835."""
    run = by_id(stored, "resnet50-sgd-nesterov-50-epochs")
    assert run["epochs"] == 50
    assert "0.005" in run["optimizer_settings"] and "nesterov" in run["optimizer_settings"]
    assert run["metrics"] == {"train_accuracy": 0.9739233, "train_loss": 0.0835}
    assert "no test figure" in stored.metric_meaning(run, "train_accuracy")


def test_parameter_claims_are_stored(stored):
    """The articles' counts: 14,719,818 and 23,608,202 (53,120 non-trainable), 6,148,138, ~8M, 138M, 61M."""
    assert stored.claim_for("vgg16_mnist")["total"] == 14_719_818
    resnet = stored.claim_for("resnet50_mnist")
    assert (resnet["total"], resnet["trainable"], resnet["non_trainable"]) == (23_608_202, 23_555_062, 53_120)
    assert stored.claim_for("shallow_1x784")["total"] == 6_148_138
    assert stored.claim_for("densenet121_imagenet")["total"] == 8_000_000
    assert stored.claim_for("densenet121_cifar10")["trainable_text"] == "several hundred"
    assert stored.claim_for("vgg16_imagenet")["total"] == 138_000_000
    assert stored.claim_for("alexnet_imagenet")["total"] == 61_000_000


def test_epoch_times_from_the_logs_are_stored(stored):
    """Per-epoch V100 times: ResNet50 59/49/49 s, VGG16 33 then 29 s, at 1,562 steps of 32."""
    resnet = [log["seconds"] for log in stored.epoch_logs if log["run"].startswith("ResNet50")]
    vgg = [log["seconds"] for log in stored.epoch_logs if log["run"].startswith("VGG16")]
    assert resnet == [59, 49, 49]
    assert vgg == [33, 29, 29, 29, 29, None]
    assert all(log["steps_per_epoch"] == 1562 and log["batch_size"] == 32 for log in stored.epoch_logs)
    assert max(log["accuracy"] for log in stored.epoch_logs if log["run"].startswith("VGG16")) == 0.1137


def test_densenet_transfer_results_are_stored(stored):
    """88.5% validation in 3-5 epochs with frozen base and 32->224 resize; 83% and 80% at native 32x32."""
    main = by_id(stored, "densenet121-resize-224-frozen")
    assert main["metrics"] == {"validation_accuracy": 0.885}
    assert main["epochs"] == [3, 5]
    assert main["weights"] == "ImageNet" and "frozen" in main["configuration"]
    assert main["input_size"].startswith("224x224x3") and "32x32" in main["input_size"]
    assert by_id(stored, "densenet121-native-32-optimised")["metrics"] == {"validation_accuracy": 0.83}
    assert by_id(stored, "densenet121-native-32-plain")["metrics"] == {"validation_accuracy": 0.80}
    topics = {finding["topic"]: finding["values"] for finding in stored.findings}
    assert topics["data augmentation"] == {"epoch_time_factor": 2}
    assert topics["fine-tuning"] == {"epoch_time_factor_224": 100, "epoch_time_factor_32": 10}
    assert topics["ImageNet accuracy claim"] == {"imagenet_accuracy": 0.923}


def test_shallow_nets_alexnet_and_cats_vs_dogs_are_stored(stored):
    """Shallow nets (86.36% best single layer), AlexNet's 86.43%, and the CNNs' 61% / 67% / 75%."""
    best = by_id(stored, "shallow-392-none-d08")["metrics"]
    assert best == {"test_accuracy": 0.8636, "test_loss": 0.38, "precision": 0.8877, "recall": 0.8455}
    assert by_id(stored, "shallow-392-relu-d05")["metrics"]["test_accuracy"] == 0.8620
    assert by_id(stored, "shallow-2x78-d05")["metrics"]["test_accuracy"] == 0.8671
    assert by_id(stored, "shallow-2x392-d05")["metrics"]["test_accuracy"] == 0.8666
    assert by_id(stored, "alexnet-fashion-mnist")["metrics"] == {"test_accuracy": 0.8643}
    cats = [r["metrics"].get("validation_accuracy") for r in stored.results if r["source"] == "cats-vs-dogs"]
    assert cats == [None, 0.61, 0.67, 0.75]


def _number_forms(value: float) -> set[str]:
    """The ways an article may have printed `value`: 0.9872, 86.36(%), 14,719,818, 54K, 6.1M, 8 million."""
    forms = {str(value), format(value, "g"), f"{value:,}", format(round(value * 100, 6), "g")}
    if value >= 1000:
        forms |= {
            format(value / 1000, "g") + "K",
            format(value / 1e6, "g") + "M",
            format(value / 1e6, "g") + " million",
        }
    if value == 0:
        forms.add("no non-trainable")
    if isinstance(value, float) and value < 1:
        forms.add(f"{value:.4f}")
    return forms


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed articles are not next to this checkout")
def test_every_quote_is_verbatim_in_its_article(stored):
    """Each stored quote occurs word for word in its seed article, so every number can be traced."""
    for group in (stored.results, stored.parameter_claims, stored.findings):
        for record in group:
            article = _normalised((SEEDS / stored.sources[record["source"]]["seed_file"]).read_text())
            for part in record["quote"].split(" ... "):
                assert _normalised(part) in article, (record["source"], part)


def test_every_stored_number_appears_in_its_quote(stored):
    """Every metric and parameter count is printed in the quote stored beside it."""
    checks = [(result["quote"], result["metrics"].values()) for result in stored.results]
    for claim in stored.parameter_claims:
        numbers = [
            claim[key]
            for key in ("total", "trainable", "non_trainable", "base", "head_dense")
            if claim.get(key) is not None
        ]
        checks.append((claim["quote"], numbers))
    for quote, numbers in checks:
        for number in numbers:
            assert any(form in quote for form in _number_forms(number)), (number, quote)


def test_every_metric_has_a_meaning(stored):
    """No number is stored without saying what it measures (test, validation or train)."""
    for result in stored.results:
        for metric in result["metrics"]:
            meaning = stored.metric_meaning(result, metric)
            assert len(meaning) > 30
    rows = metric_meaning_rows(stored, [r["id"] for r in stored.results])
    assert sum(row["results"] for row in rows) == sum(len(r["metrics"]) for r in stored.results)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda data: data["results"][0]["metrics"].update(test_accuracy=99.24), "not a number in range"),
        (lambda data: data["results"][0].update(source="nobody"), "unknown source"),
        (lambda data: data["results"][0].pop("hardware"), "lacks hardware"),
        (lambda data: data["results"][0]["metrics"].update(top5=0.9), "unknown metric"),
        (lambda data: data["results"][1].update(id=data["results"][0]["id"]), "appears twice"),
        (lambda data: data["sources"]["hasan2020"]["metric_meanings"].pop("test_loss"), "means"),
    ],
)
def test_validation_names_what_is_wrong(breakage, message):
    """A broken results file is rejected with a message naming the problem."""
    data = json.loads(RESULTS_PATH.read_text())
    breakage(data)
    with pytest.raises(ValueError, match=message):
        validate_results(data)


def test_filters_combine_and_reject_unknown_choices(stored):
    """Model x optimizer x weights narrows the rows; an unknown choice is a ValueError."""
    rows = result_rows(stored)
    sgd_vgg = filter_rows(rows, ResultFilter(models=("VGG16",), optimizers=("SGD",)))
    assert sorted(row["test_accuracy"] for row in sgd_vgg) == [0.9914, 0.9969]
    assert len(filter_rows(rows, ResultFilter())) == len(rows)
    imagenet = filter_rows(rows, ResultFilter(weights=("ImageNet",)))
    assert {row["model"] for row in imagenet} == {"VGG16", "ResNet50", "DenseNet121"}
    with pytest.raises(ValueError, match="VGG19"):
        filter_rows(rows, ResultFilter(models=("VGG19",)))


def test_rows_carry_headline_gap_and_article_count(stored):
    """Headline accuracy is test, else validation; train - test is computed; article counts are attached."""
    rows = {row["id"]: row for row in result_rows(stored)}
    assert rows["densenet121-resize-224-frozen"]["headline_metric"] == "validation accuracy"
    assert rows["vgg16-adam-random"]["headline_accuracy"] == 0.9924
    assert rows["resnet50-sgd-random"]["train_minus_test"] == pytest.approx(0.9335 - 0.9711)
    assert rows["vgg16-sgd-imagenet"]["article_parameters"] == 14_719_818
    assert rows["densenet121-resize-224-frozen"]["article_parameters"] is None
    assert datasets_caption(rows[key] for key in ("vgg16-adam-random", "alexnet-fashion-mnist")) == (
        "MNIST: VGG16 · Fashion-MNIST: AlexNet"
    )


def test_each_chart_names_its_datasets(stored):
    """Chart subtitles name the datasets of the plotted rows; the user's runs join the log-scale chart."""
    rows = result_rows(stored)
    mnist = filter_rows(rows, ResultFilter(models=("VGG16", "ResNet50")))
    assert charts.accuracy_per_configuration(mnist).to_dict()["title"]["subtitle"] == "MNIST: VGG16, ResNet50"
    fit = charts.train_versus_test(rows, "loss").to_dict()
    assert fit["title"]["text"] == "Train vs test loss" and fit["title"]["subtitle"].startswith("MNIST:")
    run = {"run_id": 3, "label": "392 neurons, none, dropout 0.8", "params": 3_074_074, "test_accuracy": 0.85}
    spec = charts.accuracy_versus_parameters(
        rows, {"vgg16_mnist": 1, "densenet121_cifar10": 2}, [{**run, "dataset": "Fashion-MNIST"}]
    ).to_dict()
    assert spec["encoding"]["x"]["scale"]["type"] == "log"
    points = next(iter(spec["datasets"].values()))
    ours = [p for p in points if p["parameters from"] == "our build"]
    assert {p["parameters"] for p in ours} == {1, 2}
    assert any(p["label"].startswith("your run #3") and p["who"] == "your run" for p in points)
    assert "Fashion-MNIST" in spec["title"]["subtitle"] and "CIFAR-10" in spec["title"]["subtitle"]


def test_verdicts_compare_exact_rounded_and_worded_claims():
    """Exact claims must match exactly, rounded ones within 5%, worded ones are shown beside ours."""
    ours = {"total": 23_608_202, "trainable": 23_555_082, "non_trainable": 53_120}
    claim = {"total": 23_608_202, "trainable": 23_555_062, "non_trainable": 53_120, "approximate": False}
    assert compare_with_claim(ours, claim) == "total matches; trainable differs by +20; non_trainable matches"
    rounded = {"total": 3_000_000, "non_trainable": 0, "approximate": True}
    verdict = compare_with_claim({"total": 3_074_074, "trainable": 3_074_074, "non_trainable": 0}, rounded)
    assert verdict == "total within 2.5% of the rounded figure; non_trainable matches"
    worded = {"trainable_text": "several hundred", "approximate": True}
    assert "ours 591,754" in compare_with_claim({"total": 1, "trainable": 591_754, "non_trainable": 0}, worded)
    assert compare_with_claim(ours, None) == "the article gives no count"


# --- Rebuilt models. Independent references: the articles' printed counts and hand arithmetic. ---


def dense_parameters(inputs: int, units: int) -> int:
    return inputs * units + units


def conv_parameters(kernel: int, channels_in: int, channels_out: int) -> int:
    return kernel * kernel * channels_in * channels_out + channels_out


@pytest.mark.parametrize("hidden_units", [7, 78, 392, 784])
def test_shallow_single_layer_counts(hidden_units):
    """Per-pixel Dense(n) has 2n weights, the softmax layer 784*n*10 + 10: 6,148,138 for n = 784."""
    report = inspect_architecture(f"shallow_1x{hidden_units}")
    expected = dense_parameters(1, hidden_units) + dense_parameters(28 * 28 * hidden_units, 10)
    assert report["ours"] == {"total": expected, "trainable": expected, "non_trainable": 0}
    assert report["depth"] == 2
    assert report["layers"][1]["output_shape"] == f"(None, 28, 28, {hidden_units})"
    if hidden_units == 784:
        assert expected == 6_148_138
        assert [row["parameters"] for row in report["layers"]] == [0, 1568, 0, 0, 6_146_570]


def test_shallow_two_layer_count():
    """The second per-pixel Dense(n) adds n*n + n weights."""
    report = inspect_architecture("shallow_2x392")
    expected = dense_parameters(1, 392) + dense_parameters(392, 392) + dense_parameters(28 * 28 * 392, 10)
    assert report["ours"]["total"] == expected == 3_228_130
    assert report["depth"] == 3


def test_vgg16_matches_hand_count_and_article():
    """Thirteen 3x3 convolutions (64..512 channels) + Dense(512 -> 10) = 14,719,818, the article's figure."""
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    base = sum(conv_parameters(3, c_in, c_out) for c_in, c_out in zip(channels, channels[1:], strict=False))
    expected = base + dense_parameters(512, 10)
    report = inspect_architecture("vgg16_mnist")
    assert base == 14_714_688
    assert report["ours"] == {"total": expected, "trainable": expected, "non_trainable": 0}
    assert expected == 14_719_818
    assert [(row["name"], row["parameters"]) for row in report["layers"][1:]] == [
        ("vgg16", 14_714_688),
        ("dropout", 0),
        ("dense", 5_130),
    ]
    assert report["kernel_sizes"] == {"3x3": 13}
    assert report["depth"] == 14  # 13 convolutions + the new Dense(10).


def test_resnet50_matches_article_except_its_trainable_typo():
    """Total 23,608,202 and non-trainable 53,120 (2 x 26,560 batch-norm channels) match; trainable is +20."""
    # Batch-norm channels: the stem's 64, then per bottleneck block f + f + 4f, plus 4f for each
    # stage's projection shortcut; each channel keeps a moving mean and a moving variance.
    stages = [(64, 3), (128, 4), (256, 6), (512, 3)]
    batch_norm_channels = 64 + sum(blocks * 6 * width + 4 * width for width, blocks in stages)
    report = inspect_architecture("resnet50_mnist")
    assert report["ours"]["non_trainable"] == 2 * batch_norm_channels == 53_120
    assert report["ours"]["total"] == 23_608_202
    assert report["ours"]["trainable"] == 23_608_202 - 53_120 == 23_555_082
    assert report["layers"][-1]["parameters"] == dense_parameters(2048, 10) == 20_490
    assert report["depth"] == 50  # 49 convolutions on the longest path + Dense(10).
    assert report["kernel_sizes"] == {"1x1": 36, "3x3": 16, "7x7": 1}


def test_densenet121_transfer_head_and_imagenet_model():
    """Frozen base: 591,754 trainable head weights, 7,037,504 frozen; with ImageNet's top 8,062,504, depth 121."""
    head = dense_parameters(1024, 512) + dense_parameters(512, 128) + dense_parameters(128, 10)
    transfer = inspect_architecture("densenet121_cifar10")
    assert transfer["ours"]["trainable"] == head == 591_754
    assert transfer["ours"]["non_trainable"] == 7_037_504
    assert transfer["layers"][1]["output_shape"] == "(None, 224, 224, 3)"
    assert transfer["depth"] == 123
    imagenet = inspect_architecture("densenet121_imagenet")
    assert imagenet["ours"]["total"] == 7_037_504 + dense_parameters(1024, 1000) == 8_062_504
    assert imagenet["depth"] == 121
    assert imagenet["keras_layers"] > 400


def test_unknown_architecture_is_a_value_error():
    """Asking for an architecture we do not build says which ones exist."""
    with pytest.raises(ValueError, match="vgg16_mnist"):
        inspect_architecture("alexnet_imagenet")


def test_cli_prints_ours_beside_the_articles_as_json():
    """`python -m core.architectures params --json KEY...` prints our counts, the article's and a verdict."""
    completed = subprocess.run(
        [sys.executable, "-m", "core.architectures", "params", "--json", "shallow_1x784", "shallow_2x78"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    reports = json.loads(completed.stdout)
    assert [report["key"] for report in reports] == ["shallow_1x784", "shallow_2x78"]
    first = reports[0]
    assert first["ours"] == {"total": 6_148_138, "trainable": 6_148_138, "non_trainable": 0}
    assert first["article"]["total"] == 6_148_138
    assert first["verdict"].startswith("total matches")
    assert reports[1]["article"] is None


def test_cli_rejects_unknown_keys():
    """An unknown architecture key is a usage error naming the valid ones."""
    completed = subprocess.run(
        [sys.executable, "-m", "core.architectures", "params", "vgg19"], capture_output=True, text=True, cwd=ROOT
    )
    assert completed.returncode == 2
    assert "resnet50_mnist" in completed.stderr


def test_loading_results_does_not_import_tensorflow():
    """Reading and charting the stored results never imports TensorFlow or Keras."""
    code = (
        "import sys; from core.architectures.results import load_results, result_rows; "
        "import core.architectures.charts as c; rows = result_rows(load_results()); "
        "c.accuracy_per_configuration(rows).to_dict(); "
        "print(any(m in sys.modules for m in ('tensorflow', 'keras')))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert completed.stdout.strip() == "False"


def test_results_file_round_trips_through_validation():
    """The shipped file validates, and a deep copy of it too (validation does not mutate)."""
    data = json.loads(RESULTS_PATH.read_text())
    before = copy.deepcopy(data)
    validate_results(data)
    assert data == before
