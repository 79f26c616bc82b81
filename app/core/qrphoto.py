"""QR codes in photos: what a tablet or kiosk without a live camera sends the server.

Tablets reached over plain HTTP on the shop's LAN are not a secure context, so the
browser gives them no live camera; a photo taken with ``<input type=file
capture=environment>`` is sent instead and decoded here with zxing-cpp.
"""

from __future__ import annotations

import io
from typing import Any

MAX_PHOTO_BYTES = 8 * 1024 * 1024  # a phone photo is 2-5 MB
MAX_SIDE = 1600  # decode a smaller copy: a QR code filling a tenth of the frame still reads


def decode_upload(upload: Any) -> str | None:
    """The QR code's text in an uploaded photo (a Werkzeug ``FileStorage`` or None),
    reading at most one byte past the limit so a huge upload is never held whole."""
    data = upload.read(MAX_PHOTO_BYTES + 1) if upload else b""
    return decode_qr(data)


def decode_qr(data: bytes) -> str | None:
    """The text of the first QR code in an image, or None (not an image, or no QR code).

    Only QR codes are looked for: zxing-cpp may otherwise report a spurious linear
    barcode read across the modules of the QR code itself.
    """
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    if not data or len(data) > MAX_PHOTO_BYTES:
        return None
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > 50_000_000:  # a decompression bomb, not a photo
            return None
        img.draft("L", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale, fast
        img = img.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    img.thumbnail((MAX_SIDE, MAX_SIDE))
    found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    return found[0].text if found else None
