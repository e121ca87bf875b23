"""`python -m core.kernels`: list the preset kernels, or filter an image file with one.

python -m core.kernels list
python -m core.kernels apply IN OUT.png --kernel NAME|MATRIX [--mode same|reflect|valid]
    [--stride 1] [--color gray|rgb] [--raw OUT.npy] [--display signed|absolute|clip]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.images import ImageError, load_image
from core.kernels.correlation import COLORS, MODES, FilterSettings, apply_kernel
from core.kernels.display import SCALINGS, encode_png, summarize, to_display
from core.kernels.learned import resolve_kernel
from core.kernels.presets import PRESETS


def _list_presets() -> str:
    blocks = []
    for kernel in PRESETS.values():
        body = "\n".join("    " + line for line in kernel.formatted().splitlines())
        blocks.append(f"{kernel.name}  ({kernel.title})\n{body}\n    {kernel.responds_to.replace('*', '')}")
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.kernels", description="Image kernels applied the way a CNN layer applies them."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the preset kernels with their matrices")
    apply = commands.add_parser("apply", help="filter an image with a kernel and save the result as PNG")
    apply.add_argument("input", help="the image to filter (PNG, JPEG, GIF, BMP, TIFF or WebP)")
    apply.add_argument("output", help="where to write the PNG")
    apply.add_argument(
        "--kernel",
        required=True,
        help="a preset name (see 'list') or a matrix like '[[1,0,-1],[2,0,-2],[1,0,-1]]'",
    )
    apply.add_argument("--mode", default="same", choices=list(MODES), help="border handling (default same)")
    apply.add_argument("--stride", default=1, type=int, help="step between output pixels (default 1)")
    apply.add_argument("--color", default="gray", choices=list(COLORS), help="gray or each RGB channel (default gray)")
    apply.add_argument("--raw", metavar="OUT.npy", help="also save the unscaled float32 response")
    apply.add_argument(
        "--display",
        choices=list(SCALINGS),
        help="how the PNG shows the response (default: the preset's own, else signed)",
    )
    args = parser.parse_args(argv)
    if args.command == "list":
        print(_list_presets())
        return 0
    try:
        matrix, preset = resolve_kernel(args.kernel)
        settings = FilterSettings(mode=args.mode, stride=args.stride, color=args.color)
        image = load_image(args.input, mode="L" if args.color == "gray" else "RGB")
        response = apply_kernel(image, matrix, settings)
        scaling = args.display or (preset.display if preset else "signed")
        picture, limit = to_display(response, scaling)
        Path(args.output).write_bytes(encode_png(picture))
        if args.raw:
            np.save(args.raw, response.astype(np.float32))
    except (ImageError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.output}: {summarize(response, scaling, limit)} (input {image.shape[1]}x{image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
