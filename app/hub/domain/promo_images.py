"""Promotion images: an upload checked by Pillow, cleaned, and cut to the kiosk formats.

Nothing of the uploaded file reaches a kiosk but its pixels: the image is decoded,
turned upright by its EXIF orientation, copied into a fresh image (so no EXIF, GPS
position, ICC profile, comment or XMP packet survives) and re-encoded as WebP in each
kiosk format. Only JPEG, PNG and WebP are accepted, at most MAX_BYTES, and the pixel
count is checked from the header before anything is decoded (decompression bombs).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024
MAX_MEGABYTES = MAX_BYTES // (1024 * 1024)
MAX_PIXELS = 40_000_000  # a 8000 x 5000 photo; far past any banner, far below a bomb
MIN_SIZE = (600, 200)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
# name -> (width, height): the attract screen's banner and the smaller product tile.
FORMATS: dict[str, tuple[int, int]] = {"banner": (1920, 600), "tile": (600, 400)}
MIME = "image/webp"
WEBP_QUALITY = 82


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; ``message`` says why, in French."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


TOO_LARGE_MESSAGE = (
    f"L'image dépasse {MAX_MEGABYTES} Mo. Choisissez une image de {MAX_MEGABYTES} Mo au plus "
    "(une bannière de 1920 × 600 pixels pèse bien moins)."
)


def _decode(data: bytes) -> Image.Image:
    """Check and decode ``data``; an RGB image without any metadata, upright."""
    if not data:
        raise ImageRejected("empty", "Le fichier est vide : choisissez une image.")
    if len(data) > MAX_BYTES:
        raise ImageRejected("too_large", TOO_LARGE_MESSAGE)
    not_image = ImageRejected(
        "not_an_image",
        "Ce fichier n'est pas une image lisible : envoyez un JPEG, un PNG ou un WebP.",
    )
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ALLOWED_FORMATS:
                    raise ImageRejected(
                        "format",
                        f"Format {probe.format or 'inconnu'} refusé : envoyez un JPEG, un PNG "
                        "ou un WebP.",
                    )
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise ImageRejected(
                        "too_many_pixels",
                        f"L'image fait {width} × {height} pixels : c'est trop (40 mégapixels "
                        "au plus). Réduisez-la avant de l'envoyer.",
                    )
                probe.verify()  # checks the file's structure (and PNG checksums)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                upright = ImageOps.exif_transpose(img)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            "too_many_pixels",
            "L'image a bien trop de pixels (40 mégapixels au plus) : réduisez-la avant de "
            "l'envoyer.",
        ) from None
    except UnidentifiedImageError:
        raise not_image from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError):
        # A truncated or corrupt file: Pillow's decoders raise any of these.
        raise not_image from None
    if upright.width < MIN_SIZE[0] or upright.height < MIN_SIZE[1]:
        raise ImageRejected(
            "too_small",
            f"L'image fait {upright.width} × {upright.height} pixels : il en faut au moins "
            f"{MIN_SIZE[0]} × {MIN_SIZE[1]} pour un écran de borne.",
        )
    if upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    ):
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = upright.convert("RGB")
    # Pixels only: a new image built from raw bytes carries no info dict at all.
    return Image.frombytes("RGB", flat.size, flat.tobytes())


def process(data: bytes) -> dict[str, bytes]:
    """Validate an upload and return ``{format name: WebP bytes}`` for every kiosk format.

    Raises :class:`ImageRejected` with a message for people.
    """
    pixels = _decode(data)
    out = {}
    for name, size in FORMATS.items():
        fitted = ImageOps.fit(pixels, size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        fitted.save(buf, "WEBP", quality=WEBP_QUALITY, method=4)
        out[name] = buf.getvalue()
    return out


def content_hash(images: dict[str, bytes]) -> str:
    """A short hash naming this set of images (it changes with any pixel of any format)."""
    digest = hashlib.sha256()
    for name in sorted(images):
        digest.update(name.encode() + b"\0" + hashlib.sha256(images[name]).digest())
    return digest.hexdigest()[:20]


def images_dir(data_dir: str | Path, promotion_id: str) -> Path:
    """Where a promotion's images live in the hub's data directory."""
    return Path(data_dir) / "promotions" / promotion_id


def image_path(data_dir: str | Path, promotion_id: str, image_hash: str, name: str) -> Path:
    """One stored image file."""
    return images_dir(data_dir, promotion_id) / image_hash / f"{name}.webp"


def store(data_dir: str | Path, promotion_id: str, images: dict[str, bytes]) -> dict[str, object]:
    """Write the images (atomically, one directory per content hash); return their
    description ``{hash, formats: {name: {width, height, type, sha256, bytes}}}``."""
    image_hash = content_hash(images)
    final = images_dir(data_dir, promotion_id) / image_hash
    if not final.exists():
        tmp = final.with_name(f".{image_hash}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, blob in images.items():
            (tmp / f"{name}.webp").write_bytes(blob)
        try:
            tmp.rename(final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another request stored the same images
    return {
        "hash": image_hash,
        "formats": {
            name: {
                "width": FORMATS[name][0],
                "height": FORMATS[name][1],
                "type": MIME,
                "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob),
            }
            for name, blob in images.items()
        },
    }
