import pytest

from app.core.ean import (
    ean13_check_digit,
    has_valid_check_digit,
    is_valid_ean13,
    looks_like_barcode,
    make_ean13,
)


@pytest.mark.parametrize(
    "code",
    [
        "4006381333931",  # EAN-13
        "3760000000017",  # EAN-13, French prefix
        "96385074",  # EAN-8
        "036000291452",  # UPC-A
        "10012345678902",  # GTIN-14
        "0000000000000",
    ],
)
def test_known_good_codes(code):
    assert looks_like_barcode(code)
    assert has_valid_check_digit(code)


def test_check_digit_of_known_ean13():
    assert ean13_check_digit("400638133393") == 1
    assert ean13_check_digit("376000000001") == 7
    assert make_ean13("400638133393") == "4006381333931"


def test_every_wrong_check_digit_is_rejected():
    good = "4006381333931"
    for digit in "0123456789":
        code = good[:-1] + digit
        assert is_valid_ean13(code) is (code == good)
        assert has_valid_check_digit(code) is (code == good)


def test_make_ean13_is_always_valid():
    for n in range(0, 10**9, 7_654_321):
        first12 = f"376{n:09d}"
        code = make_ean13(first12)
        assert len(code) == 13 and code.startswith(first12)
        assert is_valid_ean13(code)


def test_a_single_digit_typo_is_caught():
    code = make_ean13("376104200001")
    for position in range(13):
        for digit in "0123456789":
            if digit != code[position]:
                typo = code[:position] + digit + code[position + 1 :]
                assert not is_valid_ean13(typo)


@pytest.mark.parametrize(
    "code",
    ["", "123", "1234567", "123456789", "12345678901", "123456789012345", "40063813339a1"],
)
def test_wrong_lengths_and_letters(code):
    assert not looks_like_barcode(code)
    assert not has_valid_check_digit(code)
    assert not is_valid_ean13(code)


def test_only_ascii_digits_count():
    assert not looks_like_barcode("٤٠٠٦٣٨١٣٣٣٩٣١")  # Arabic-Indic digits
    assert not looks_like_barcode("40063813339²1")
    assert not looks_like_barcode(" 4006381333931")
    assert not is_valid_ean13("4006381333931\n")


def test_is_valid_ean13_wants_13_digits():
    assert has_valid_check_digit("96385074")
    assert not is_valid_ean13("96385074")
    assert not is_valid_ean13("036000291452")


@pytest.mark.parametrize("bad", ["", "37600000000", "3760000000011", "37600000000a"])
def test_ean13_check_digit_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        ean13_check_digit(bad)
