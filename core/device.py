"""Where training would run, found without importing TensorFlow (the home page stays light).

`describe_device()` reads the Keras backend from `KERAS_BACKEND` or `~/.keras/keras.json`,
asks `nvidia-smi` for GPU names, and reads the CPU model and its bf16 support from
`/proc/cpuinfo`. The training core confirms with Keras itself once it is imported.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeviceInfo:
    """What the sidebar shows: the Keras backend, the GPUs, and the CPU."""

    backend: str
    gpus: tuple[str, ...]
    cpu_model: str
    cpu_cores: int
    cpu_bf16: bool

    @property
    def summary(self) -> str:
        """One line, e.g. "tensorflow on NVIDIA H100" or "tensorflow, CPU only (2 cores)"."""
        if self.gpus:
            return f"{self.backend} on {', '.join(self.gpus)}"
        return f"{self.backend}, CPU only ({self.cpu_cores} cores)"


def keras_backend() -> str:
    """The backend Keras will use, as Keras itself decides it, without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def gpu_names() -> tuple[str, ...]:
    """Names of the NVIDIA GPUs the driver reports, or () when there are none."""
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in output.splitlines() if line.strip())


def cpu_description() -> tuple[str, bool]:
    """The CPU model name and whether it has AVX512-BF16 instructions."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), False
    model = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
        platform.machine(),
    )
    return model, "avx512_bf16" in text


@functools.cache
def describe_device() -> DeviceInfo:
    """Describes this machine once per process (the answer does not change while it runs)."""
    cpu_model, bf16 = cpu_description()
    return DeviceInfo(
        backend=keras_backend(),
        gpus=gpu_names(),
        cpu_model=cpu_model,
        cpu_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        cpu_bf16=bf16,
    )
