"""Runs the benchmarks under bench/ and rewrites BENCHMARKS.md.

Each `bench/bench_<name>.py` defines `TITLE`, an optional `DESCRIPTION`, and `run()`,
which returns rows `{"metric": ..., "value": ..., "unit": ..., "note": ...}`. Results are
kept per benchmark in `bench/results/<name>.json` with the machine and date they were
measured on, so running one benchmark does not erase the others' numbers; BENCHMARKS.md
is rebuilt from all of them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
import json
import os
import platform
from pathlib import Path

from core.device import describe_device

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPORT = BENCH_DIR.parent / "BENCHMARKS.md"


def machine() -> dict:
    """Names the machine a result was measured on."""
    device = describe_device()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": device.cpu_model,
        "cores": device.cpu_cores,
        "bf16": device.cpu_bf16,
        "memory_gib": round(memory_gib, 1),
        "gpu": ", ".join(device.gpus) or "none",
        "python": platform.python_version(),
        "keras_backend": device.backend,
    }


def available() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in BENCH_DIR.glob("bench_*.py"))


def runs_by_default(name: str) -> bool:
    """Whether `python -m bench` with no names runs it (the GPU check runs only on request)."""
    text = (BENCH_DIR / f"bench_{name}.py").read_text()
    return "\nDEFAULT = False" not in text


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def render_report() -> str:
    lines = [
        "# Benchmarks",
        "",
        "Rewritten by `make bench` (`python -m bench [NAME ...]`) from `bench/results/*.json`;",
        "each section names the machine and date of its own measurement.",
        "",
    ]
    for result_file in sorted(RESULTS_DIR.glob("*.json")):
        result = json.loads(result_file.read_text())
        host = result["machine"]
        lines += [
            f"## {result['title']}",
            "",
            result.get("description", ""),
            "",
            f"Measured {result['date']} on {host['cpu']}, {host['cores']} cores"
            f"{' (AVX512-BF16)' if host['bf16'] else ''}, {host['memory_gib']} GiB, GPU: {host['gpu']}, "
            f"Python {host['python']}, Keras backend {host['keras_backend']}."
            + (
                f" Load average (1 min) {result['load'][0]:g} at the start, {result['load'][1]:g} at the end"
                f" (the machine has {host['cores']} cores)."
                if "load" in result
                else ""
            ),
            "",
            "| metric | value | unit | note |",
            "|---|---:|---|---|",
        ]
        for row in result["rows"]:
            value = format_value(row["value"])
            lines.append(f"| {row['metric']} | {value} | {row.get('unit', '')} | {row.get('note', '')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all but gpu): {', '.join(available())}")
    parser.add_argument(
        "--tiny", action="store_true", help="a quick version (benchmarks that offer one); prints, saves nothing"
    )
    args = parser.parse_args(argv)
    names = args.names or [name for name in available() if runs_by_default(name)]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(available())}")
    RESULTS_DIR.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {module.TITLE}", flush=True)
        if args.tiny and "tiny" not in inspect.signature(module.run).parameters:
            parser.error(f"benchmark {name} has no --tiny version")
        load_before = os.getloadavg()[0]
        rows = module.run(tiny=True) if args.tiny else module.run()
        for row in rows:
            print(
                f"  {row['metric']:<50} {format_value(row['value']):>12} {row.get('unit', '')}  {row.get('note', '')}"
            )
        if args.tiny:
            continue
        result = {
            "title": module.TITLE,
            "description": getattr(module, "DESCRIPTION", "").strip(),
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": machine(),
            "load": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "rows": rows,
        }
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.tiny:
        REPORT.write_text(render_report())
        print(f"Wrote {REPORT}")
    return 0
