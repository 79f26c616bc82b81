"""The README's four pictures, copied from ``make screenshots``' folder, made small.

    make screenshots && .venv/bin/python -m tools.readme_pictures

Reads screenshots/ (``--source``), writes docs/screenshots/ (``--dest``): each picture
scaled down, at most 300 KB (a 256-colour palette when full colour is larger).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

# README name: (screenshot, width in the README's copy)
PICTURES = {
    "kiosk-product.png": ("kiosk-product-1080x1920.png", 720),
    "counter-preparation.png": ("counter-preparation-1280x800.png", 1024),
    "hq-promotion.png": ("hq-promotion-1440x900.png", 1152),
    "shop-cart.png": ("shop-cart-390x844.png", 390),
}
MAX_BYTES = 300_000


def small_png(source: Path, width: int) -> bytes:
    """The picture at ``width`` pixels wide: full colour when that is under 300 KB, else a
    256-colour palette, narrower until it is."""
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    while True:
        height = round(rgb.height * width / rgb.width)
        scaled = rgb.resize((width, height), Image.Resampling.LANCZOS)
        for picture in (scaled, scaled.quantize(colors=256, method=Image.Quantize.FASTOCTREE)):
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", optimize=True)
            if buffer.tell() <= MAX_BYTES:
                return buffer.getvalue()
        if width <= 200:
            raise ValueError(f"{source} stays over {MAX_BYTES} bytes")
        width = int(width * 0.85)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.readme_pictures", description=__doc__)
    parser.add_argument("--source", type=Path, default=Path("screenshots"))
    parser.add_argument("--dest", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    missing = [s for s, _ in PICTURES.values() if not (args.source / s).is_file()]
    if missing:
        print(
            f"not in {args.source}/: {', '.join(missing)} (run make screenshots)", file=sys.stderr
        )
        return 1
    args.dest.mkdir(parents=True, exist_ok=True)
    for name, (shot, width) in PICTURES.items():
        data = small_png(args.source / shot, width)
        (args.dest / name).write_bytes(data)
        print(f"{args.dest / name}: {len(data) // 1000} KB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
