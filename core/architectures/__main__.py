"""`python -m core.architectures`: parameter counts of the rebuilt models beside the articles'.

python -m core.architectures params [--json] [KEY ...]
python -m core.architectures summary KEY
"""

from __future__ import annotations

import argparse
import json

from core.architectures.models import SPECS, inspect_architecture, parameter_report


def _format_count(value) -> str:
    return "-" if value is None else f"{value:,}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.architectures",
        description="Build the architectures in Keras and compare their parameter counts with the articles'.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="build the architectures and compare parameter counts")
    params.add_argument("keys", nargs="*", help=f"architectures (default: all): {', '.join(SPECS)}")
    params.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary = commands.add_parser("summary", help="the layer summary of one architecture")
    summary.add_argument("key", choices=list(SPECS))
    args = parser.parse_args(argv)

    if args.command == "summary":
        report = inspect_architecture(args.key)
        for row in report["layers"]:
            print(f"{row['name']:<28} {row['type']:<18} {row['output_shape']:<24} {row['parameters']:>12,}")
        print(f"depth {report['depth']}, {report['keras_layers']} Keras layers")
        print(f"convolution kernels: {report['kernel_sizes']}")
        return 0

    unknown = [key for key in args.keys if key not in SPECS]
    if unknown:
        parser.error(f"unknown architecture {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    reports = parameter_report(args.keys or None)
    if args.json:
        fields = (
            "key",
            "title",
            "dataset",
            "ours",
            "article",
            "verdict",
            "depth",
            "keras_layers",
            "build_seconds",
        )
        print(json.dumps([{name: report[name] for name in fields} for report in reports], indent=2))
        return 0
    header = ("architecture", "ours total", "trainable", "non-train.", "article")
    print(f"{header[0]:<22} {header[1]:>13} {header[2]:>13} {header[3]:>11} {header[4]:>13}  verdict")
    for report in reports:
        ours, claim = report["ours"], report["article"] or {}
        print(
            f"{report['key']:<22} {ours['total']:>13,} {ours['trainable']:>13,} {ours['non_trainable']:>11,} "
            f"{_format_count(claim.get('total')):>13}  {report['verdict']}"
        )
    return 0


raise SystemExit(main())
