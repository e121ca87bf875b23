"""Memory that item 5 of issue 12 bounds: the kernel lab's full-size download, the cat-or-dog cache entry."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core import kernels
from core.cache import size_in_bytes

TITLE = "Memory: the 64-megapixel download and what the shared caches keep"
DESCRIPTION = """
The kernel lab's full-size download of a 64-megapixel photo (the loader's limit; the cat
tiled to 8000x8000), each in a fresh process: its peak resident memory above the photo
itself (VmHWM after /proc/self/clear_refs), as it was (the whole float32 response, then
Pillow's PNG encoder) and as `render_png` makes it now (blocks of about 8 MiB of output
rows, written to the PNG block by block). The times are single runs; on a machine shared
with other work they vary by 2-3x between runs, so compare rows of one run. Then the bytes
one cat-or-dog cache entry holds (`core.cache.size_in_bytes`) for a 64-megapixel PNG, which
decodes at full size: the whole decode as the cache kept it before, and `Analysis.reduced()`.
"""

ROOT = Path(__file__).resolve().parent.parent

DOWNLOAD_SIDE = 8000  # The loader's 64-megapixel limit.
DOWNLOAD_CASES = {
    "gray, V with H (gradient magnitude), absolute": ("gray", "v", "absolute"),
    "RGB, Sobel x, signed": ("rgb", "sobel_x", "signed"),
}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_download(case: str, banded: bool) -> dict:
    """Peak memory and time of one full-size download of a 64-megapixel photo, in this process.

    The photo is the bundled cat tiled to 8000x8000 in numpy (no decoder peak); the peak
    resident memory (VmHWM, reset through /proc/self/clear_refs) is taken above what the
    process holds with the photo, so it is what the download alone adds.
    """
    color, name, scaling = DOWNLOAD_CASES[case]
    cat = np.asarray(Image.open(ROOT / "assets" / "samples" / "chelsea.jpg").convert("RGB" if color == "rgb" else "L"))
    reps = (-(-DOWNLOAD_SIDE // cat.shape[0]), -(-DOWNLOAD_SIDE // cat.shape[1])) + ((1,) if cat.ndim == 3 else ())
    photo = np.ascontiguousarray(np.tile(cat, reps)[:DOWNLOAD_SIDE, :DOWNLOAD_SIDE])
    preset = kernels.PRESETS[name]
    settings = kernels.FilterSettings(color=color)
    partner = kernels.PRESETS[preset.partner].matrix if scaling == "absolute" else None
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    if banded:
        png = kernels.render_png(photo, preset.matrix, settings, partner, scaling)
    else:  # The download as it was: the whole response in float32, then Pillow's encoder.
        png = kernels.encode_png(
            kernels.to_display(kernels.filter_image(photo, preset.matrix, settings, partner), scaling)[0]
        )
    seconds = time.perf_counter() - started
    return {"peak_mib": (_status_kib("VmHWM") - before) / 1024, "seconds": seconds, "png_mib": len(png) / 2**20}


def download_rows() -> list[dict]:
    """Each case, whole and banded, each in a fresh process so that one peak does not hide another."""
    rows = []
    for case in DOWNLOAD_CASES:
        measured = {}
        for banded in (False, True):
            code = (
                "import json; from bench.bench_memory import measure_download; "
                f"print(json.dumps(measure_download({case!r}, {banded})))"
            )
            output = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=900
            ).stdout
            measured[banded] = json.loads(output.strip().splitlines()[-1])
        whole, banded = measured[False], measured[True]
        label = f"64 MP download ({DOWNLOAD_SIDE}x{DOWNLOAD_SIDE}), {case}"
        rows += [
            {"metric": f"{label}: peak memory, whole float32 response", "value": whole["peak_mib"], "unit": "MiB"},
            {
                "metric": f"{label}: peak memory, in row blocks (render_png)",
                "value": banded["peak_mib"],
                "unit": "MiB",
                "note": f"{whole['peak_mib'] / banded['peak_mib']:.0f}x less; PNG {banded['png_mib']:.0f} MiB "
                f"(Pillow's {whole['png_mib']:.0f} MiB)",
            },
            {
                "metric": f"{label}: time, whole / in row blocks",
                "value": f"{whole['seconds']:.1f} s / {banded['seconds']:.1f} s",
                "unit": "",
                "note": "blocks filter twice for signed/absolute (the display limit first)",
            },
        ]
    return rows


def cache_entry_rows() -> list[dict]:
    """Bytes of one cat-or-dog analysis of a 64-megapixel decode, whole and reduced (no network needed:
    the prediction's arrays have their real shapes, 1000 probabilities and the 7x7x1280 feature map)."""
    from core.catdog.classify import Analysis, Prediction, prepare

    rows, cols = np.mgrid[0:DOWNLOAD_SIDE, 0:DOWNLOAD_SIDE].astype(np.uint16)
    image = np.stack([rows % 256, cols % 256, (rows + cols) % 256], axis=2).astype(np.uint8)
    del rows, cols
    prediction = Prediction("neither", 0.0, 0.0, [], 0, np.zeros(1000, np.float32), np.zeros((7, 7, 1280), np.float32))
    whole = Analysis(image, prepare(image), prediction, np.zeros((7, 7), np.float32))
    reduced = whole.reduced()
    whole_mib, reduced_mib = size_in_bytes(whole) / 2**20, size_in_bytes(reduced) / 2**20
    return [
        {
            "metric": "cat-or-dog cache entry, 64 MP PNG, whole decode (before)",
            "value": whole_mib,
            "unit": "MiB",
            "note": f"64 entries: {64 * whole_mib / 1024:.1f} GiB",
        },
        {
            "metric": "cat-or-dog cache entry, 64 MP PNG, Analysis.reduced()",
            "value": reduced_mib,
            "unit": "MiB",
            "note": f"{reduced.image.shape[1]}x{reduced.image.shape[0]}; the 128 MiB cache holds {int(128 // reduced_mib)}",
        },
    ]


def run() -> list[dict]:
    return download_rows() + cache_entry_rows()
