"""Phone normalisation and masking."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType, geocoder
from phonenumbers import timezone as pn_timezone

from cati.services import phones
from cati.services.imports import _MOBILE_PREFIXES, synthetic_mobiles
from cati.services.phones import PhoneError, mask_phone, normalize_phone, normalize_phone_full


@pytest.mark.parametrize("raw", [
    "13812345678", "138 1234 5678", "138-1234-5678", "(138)12345678", "+86 138 1234 5678", "+8613812345678",
    "0086 138 1234 5678", "0086-13812345678", "8613812345678", "１３８１２３４５６７８", "＋８６　１３８１２３４５６７８",
    " 13812345678 ", 13812345678, 13812345678.0,
])
def test_mobile_shapes(raw):
    p = normalize_phone(raw)
    assert p.e164 == "+8613812345678"
    assert p.kind == "mobile"
    assert p.timezone == "Asia/Shanghai"
    assert p.area == "江苏省连云港市"  # phonenumbers' geocoder entry for 1381234


@pytest.mark.parametrize("raw,e164,area", [
    ("010-12345678", "+861012345678", "北京市"),
    ("(010)12345678", "+861012345678", "北京市"),
    ("0755 8888 8888", "+8675588888888", "广东省深圳市"),
    ("021-6234 5678", "+862162345678", "上海市"),
    ("+86 10 1234 5678", "+861012345678", "北京市"),
    ("0591-87654321", "+8659187654321", "福建省福州市"),
])
def test_landlines_with_area_code(raw, e164, area):
    p = normalize_phone(raw)
    assert (p.e164, p.kind, p.timezone, p.area) == (e164, "fixed", "Asia/Shanghai", area)


@pytest.mark.parametrize("raw,reason", [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    ("62345678", "landline without area code"),
    ("6234567", "landline without area code"),
    ("1381234567", "too short"),
    ("138123456789", "too long"),
    ("95588", "premium/service"),
    ("10086", "premium/service"),
    ("4008208820", "premium/service"),
    ("800-820-8820", "premium/service"),
    ("14012345678", "not a valid number"),
    ("12012345678", "not a valid number"),
    ("abc", "not digits"),
    ("138-1234-567x", "not digits"),
    ("1.38123E+10", "scientific notation"),
])
def test_rejected_numbers_say_why(raw, reason):
    with pytest.raises(PhoneError) as err:
        normalize_phone(raw)
    assert reason in err.value.reason
    assert err.value.reason == str(err.value)


def test_numbers_of_other_countries_keep_their_zone():
    hk = normalize_phone("+852 9123 4567")
    assert (hk.e164, hk.kind, hk.timezone) == ("+85291234567", "mobile", "Asia/Hong_Kong")
    us = normalize_phone("+1 415 555 2671")
    assert us.timezone == "America/Los_Angeles"


def _reference(nsn: str):
    """What the public phonenumbers API says about a CN national number (no memo, no shortcuts)."""
    n = phonenumbers.parse(nsn, "CN")
    if not phonenumbers.is_valid_number(n):
        return None
    t = phonenumbers.number_type(n)
    if t != PhoneNumberType.MOBILE and t not in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "service"
    desc = geocoder.description_for_number(n, "zh")
    area = None if desc in ("", "中国") else desc  # phonenumbers falls back to the country name
    kind = "mobile" if t == PhoneNumberType.MOBILE else "fixed"
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164), kind, \
        pn_timezone.time_zones_for_number(n)[0], area


def test_fast_path_agrees_with_full_phonenumbers_on_random_numbers():
    """The memo is keyed on the 7-digit prefix; check it against phonenumbers on numbers sharing prefixes."""
    rng = random.Random(7)
    phones._PREFIX_CACHE.clear()
    prefixes = [f"1{rng.randrange(3, 10)}{rng.randrange(100000):05d}" for _ in range(600)]
    # 600 random 7-digit prefixes × 5 random suffixes each: the first number of a prefix fills the memo, the
    # other four are answered from it, and every answer is compared with the full parse.
    nsns = [p + f"{rng.randrange(10000):04d}" for p in prefixes for _ in range(5)]
    rng.shuffle(nsns)
    seen_valid = seen_invalid = 0
    for nsn in nsns:
        ref = _reference(nsn)
        try:
            got = normalize_phone(nsn)
        except PhoneError as exc:
            assert ref is None or ref == "service", (nsn, exc.reason, ref)
            seen_invalid += 1
            continue
        assert (got.e164, got.kind, got.timezone, got.area) == ref, nsn
        assert normalize_phone_full(nsn) == got
        seen_valid += 1
    assert seen_valid > 1000 and seen_invalid > 100  # both branches were exercised
    # Without the area (what the import asks for), the rest of the verdict is the same, before and after.
    phones._PREFIX_CACHE.clear()
    for nsn in nsns[:500]:
        try:
            lean = normalize_phone(nsn, with_area=False)
        except PhoneError:
            continue
        assert lean.area in (None, _reference(nsn)[3])  # None unless the memo already knew it
        assert normalize_phone(nsn)[:3] == lean[:3] and normalize_phone(nsn).area == _reference(nsn)[3]
    assert len(phones._PREFIX_CACHE) <= len(set(prefixes))


@given(st.sampled_from(_MOBILE_PREFIXES), st.integers(0, 10 ** 8 - 1))
def test_example_generator_prefixes_are_always_valid_mobiles(prefix, suffix):
    assert normalize_phone(f"{prefix}{suffix:08d}").kind == "mobile"


def test_synthetic_numbers_are_distinct_and_not_sequential():
    nums = list(synthetic_mobiles(random.Random(1), 2000))
    assert len(set(nums)) == 2000
    ints = sorted(int(n) for n in nums)
    assert sum(1 for a, b in zip(ints, ints[1:], strict=False) if b - a == 1) < 5


@pytest.mark.parametrize("raw,masked", [
    ("+8613812345678", "138****5678"),
    ("13812345678", "138****5678"),
    ("138 1234 5678", "138****5678"),
    ("0086 13812345678", "138****5678"),
    ("+861012345678", "010****5678"),
    ("010-12345678", "010****5678"),
    ("+8675588888888", "075*****8888"),
    ("+85291234567", "+852 91****67"),
    ("95588", "*****"),
    ("", "****"),
    ("not a number", "****"),
])
def test_mask_phone(raw, masked):
    assert mask_phone(raw) == masked


@given(st.text(alphabet="0123456789+- ", min_size=0, max_size=20))
def test_mask_never_shows_more_than_seven_digits(raw):
    out = mask_phone(raw)
    assert sum(ch.isdigit() for ch in out.split(" ")[-1]) <= 7
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) >= 11:
        assert digits not in out.replace(" ", "")
