"""QR codes drawn as images: pickup codes in shop pages and e-mails, and on tickets."""

from __future__ import annotations

import qrcode
from PIL import Image

# The printable width of an 80 mm thermal roll (576 dots, less two 16-dot margins):
# the widest a QR code may be drawn anywhere, so one drawing fits a receipt too.
MAX_WIDTH_PX = 544


def render_qr(data: str, box_size: int = 6) -> Image.Image:
    """A QR code (error correction M, 4-module quiet zone) as a greyscale image."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size)
    qr.add_data(data)
    qr.make(fit=True)
    # Shrink the modules rather than overflow the roll: 2 dots (0.25 mm) is the floor.
    fit = MAX_WIDTH_PX // (qr.modules_count + 2 * qr.border)
    if fit < box_size:
        qr.box_size = max(2, fit)
    return qr.make_image().get_image().convert("L")
