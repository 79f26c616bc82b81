"""GS1 barcode numbers: EAN-8, UPC-A (12 digits), EAN-13 and GTIN-14.

All of them end with the same mod-10 check digit: from the right, skipping the check
digit itself, the digits are weighted 3, 1, 3, 1... and the check digit brings the
weighted sum up to a multiple of ten.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")
BARCODE_LENGTHS = frozenset({8, 12, 13, 14})


def _is_ascii_digits(code: str) -> bool:
    # str.isdigit() also accepts "²" or Arabic-Indic digits; a barcode is ASCII only.
    return isinstance(code, str) and _DIGITS.fullmatch(code) is not None


def gs1_check_digit(payload: str) -> int:
    """The GS1 mod-10 check digit for ``payload`` (every digit but the check digit)."""
    if not _is_ascii_digits(payload):
        raise ValueError(f"expected ASCII digits, got {payload!r}")
    # Weight 3 on the rightmost digit, then 1, 3, 1... leftwards.
    raw = payload.encode("ascii")
    odd, even = raw[::-2], raw[-2::-2]  # digits as ASCII codes: "0" is 48
    total = 3 * (sum(odd) - 48 * len(odd)) + sum(even) - 48 * len(even)
    return (10 - total % 10) % 10


def ean13_check_digit(first12: str) -> int:
    """The check digit completing the 12 digits ``first12`` into an EAN-13.

    >>> ean13_check_digit("376000000001")
    7
    """
    if not isinstance(first12, str) or len(first12) != 12:
        raise ValueError(f"an EAN-13 needs 12 digits before its check digit, got {first12!r}")
    return gs1_check_digit(first12)


def make_ean13(first12: str) -> str:
    """``first12`` followed by its check digit: a valid 13-digit EAN."""
    return first12 + str(ean13_check_digit(first12))


def is_valid_ean13(code: str) -> bool:
    """True if ``code`` is exactly 13 ASCII digits with the right check digit."""
    return _is_ascii_digits(code) and len(code) == 13 and has_valid_check_digit(code)


def looks_like_barcode(code: str) -> bool:
    """True if ``code`` has the shape of a GS1 barcode: 8, 12, 13 or 14 ASCII digits.

    Says nothing of the check digit: use :func:`has_valid_check_digit` for that.
    """
    return _is_ascii_digits(code) and len(code) in BARCODE_LENGTHS


def has_valid_check_digit(code: str) -> bool:
    """True if ``code`` is an EAN-8, UPC-A, EAN-13 or GTIN-14 with a correct check digit."""
    if not looks_like_barcode(code):
        return False
    return gs1_check_digit(code[:-1]) == int(code[-1])
