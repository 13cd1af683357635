"""Phone numbers: normalisation to E.164 (with kind, time zone and area) and masking for display and logs.

Normalisation is on the hot path of a sample import (a million rows must load in well under a minute), and a
full ``phonenumbers.parse`` + validity + type + time zone + geocoder costs ~60 µs per number. Nearly every row
of a Chinese sample is an 11-digit mobile ``1[3-9]xxxxxxxxx``, and everything phonenumbers decides about such
a number — validity, type, time zone, area — is keyed in its metadata on at most the first 7 national digits
(the geocoder's CN keys are ``86`` + 7 digits; the mobile patterns constrain at most 5 digits; the time-zone
keys 3). So the fast path memoises phonenumbers' own verdict per 7-digit prefix and reuses it for every other
number with that prefix; ``tests/services/test_phones.py`` checks the fast path against the full parse on
thousands of random numbers. Every other shape goes through phonenumbers in full.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonenumberutil import NumberParseException, ValidationResult

from cati.config import DEFAULT_CENTRE_TIMEZONE
from cati.i18n import KeyedText, render

__all__ = ["NormalizedPhone", "PhoneError", "mask_phone", "normalize_phone"]

DEFAULT_TIMEZONES = {"CN": DEFAULT_CENTRE_TIMEZONE}

# Reasons a user reads: catalogue keys (phone_*) whose text is "中文 / English", also used as reject reasons in
# import reports; the screens show one language with cati.i18n.render(reason).
R_EMPTY = KeyedText.bilingual("phone_empty")
R_CHARS = KeyedText.bilingual("phone_chars")
R_SCIENTIFIC = KeyedText.bilingual("phone_scientific")
R_TOO_SHORT = KeyedText.bilingual("phone_too_short")
R_TOO_LONG = KeyedText.bilingual("phone_too_long")
R_NO_AREA = KeyedText.bilingual("phone_no_area")
R_SERVICE = KeyedText.bilingual("phone_service")
R_INVALID = KeyedText.bilingual("phone_invalid")
R_NOT_PERSONAL = KeyedText.bilingual("phone_not_personal")


class PhoneError(ValueError):
    """A number that cannot be called; ``reason`` is a short bilingual text for reports and reject files, and
    ``key``/``params`` render it in one language."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.key = getattr(reason, "key", "")
        self.params = getattr(reason, "params", {})

    def message(self, lang: str | None = "zh-CN") -> str:
        return render(self.reason, lang)


class NormalizedPhone(NamedTuple):  # a NamedTuple: built a million times per import, and cheap to build
    e164: str  # +8613812345678
    kind: str  # 'mobile' | 'fixed'
    timezone: str  # IANA name, e.g. Asia/Shanghai
    area: str | None  # geocoder description in Chinese (e.g. 江苏省连云港市), None when unknown


# Full-width digits and punctuation (common in text typed with a Chinese IME) → ASCII; separators removed.
_TRANS = {ord("０") + i: ord("0") + i for i in range(10)}
_TRANS.update({ord("＋"): ord("+")})
for _ch in " \t\u3000\u00a0-‐‑–—－()（）.．/／":
    _TRANS[ord(_ch)] = None

_KIND = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed",
}
_SERVICE_TYPES = {
    PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
}
_SCI_RE = re.compile(r"\d(?:\.\d+)?[eE]\+?\d+")

# 7-digit national prefix → (kind, timezone, area) for valid numbers, or the PhoneError reason.
_PREFIX_CACHE: dict[str, tuple[str, str, str | None] | str] = {}


def _verdict(number: PhoneNumber, region: str) -> tuple[str, str, str | None] | str:
    """phonenumbers' verdict on a parsed number: (kind, timezone, area) or a reject reason."""
    ntype = phonenumbers.number_type(number)
    if ntype == PhoneNumberType.UNKNOWN:  # number_type is UNKNOWN exactly when is_valid_number is False
        return _invalid_reason(number)
    if ntype in _SERVICE_TYPES:
        return R_SERVICE
    kind = _KIND.get(ntype)
    if kind is None:
        return R_NOT_PERSONAL
    # time_zones_for_number would recompute the number type; the number is known to be valid and typed here.
    zones = [z for z in pn_timezone.time_zones_for_geographical_number(number) if z != "Etc/Unknown"]
    if not zones:
        home = phonenumbers.region_code_for_number(number) or region
        zones = [DEFAULT_TIMEZONES.get(home, DEFAULT_TIMEZONES.get(region, DEFAULT_CENTRE_TIMEZONE))]
    return kind, zones[0], _area(number)


_UNSET = "\x00"  # area not looked up yet (the import does not need it)


def _mobile_verdict(nsn: str, with_area: bool = True) -> tuple[str, str, str | None] | str:
    """phonenumbers' verdict on an 11-digit CN national number, skipping the work ``number_type`` and
    ``time_zones_for_number`` would repeat (region lookup, a second type check); the cost of a memo miss."""
    ntype = _cn_type(nsn)
    if ntype == PhoneNumberType.UNKNOWN:
        return _invalid_reason(PhoneNumber(country_code=86, national_number=int(nsn)))
    if ntype in _SERVICE_TYPES:
        return R_SERVICE
    kind = _KIND.get(ntype)
    if kind is None:
        return R_NOT_PERSONAL
    tz_key = nsn[:_CN_TZ_DEPTH]
    tz = _CN_TZ.get(tz_key)
    if tz is None:
        number = PhoneNumber(country_code=86, national_number=int(nsn))
        zones = [z for z in pn_timezone.time_zones_for_geographical_number(number) if z != "Etc/Unknown"]
        tz = _CN_TZ[tz_key] = zones[0] if zones else DEFAULT_TIMEZONES["CN"]
    return kind, tz, (_area_for("86", nsn) if with_area else _UNSET)


def _compile_desc(desc) -> tuple[frozenset[int], re.Pattern[str]] | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length or ()), re.compile(desc.national_number_pattern)


_CN_META = phonenumbers.PhoneMetadata.metadata_for_region("CN")
# phonenumbers' _number_type_helper, step by step, on the same metadata with the regexes compiled once
# (phonenumbers looks each one up in its regex cache on every call, ~11 times per number).
_CN_GENERAL = _compile_desc(_CN_META.general_desc)
_CN_ORDER = [
    (PhoneNumberType.PREMIUM_RATE, _compile_desc(_CN_META.premium_rate)),
    (PhoneNumberType.TOLL_FREE, _compile_desc(_CN_META.toll_free)),
    (PhoneNumberType.SHARED_COST, _compile_desc(_CN_META.shared_cost)),
    (PhoneNumberType.VOIP, _compile_desc(_CN_META.voip)),
    (PhoneNumberType.PERSONAL_NUMBER, _compile_desc(_CN_META.personal_number)),
    (PhoneNumberType.PAGER, _compile_desc(_CN_META.pager)),
    (PhoneNumberType.UAN, _compile_desc(_CN_META.uan)),
    (PhoneNumberType.VOICEMAIL, _compile_desc(_CN_META.voicemail)),
]
_CN_FIXED = _compile_desc(_CN_META.fixed_line)
_CN_MOBILE = _compile_desc(_CN_META.mobile)


def _desc_match(nsn: str, desc: tuple[frozenset[int], re.Pattern[str]] | None) -> bool:
    if desc is None:
        return False
    lengths, rx = desc
    if lengths and len(nsn) not in lengths:
        return False
    return rx.fullmatch(nsn) is not None


def _cn_type(nsn: str) -> int:
    """The PhoneNumberType phonenumbers gives a CN national number (same order of checks as its own helper)."""
    if not _desc_match(nsn, _CN_GENERAL):
        return PhoneNumberType.UNKNOWN
    for ntype, desc in _CN_ORDER:
        if _desc_match(nsn, desc):
            return ntype
    if _desc_match(nsn, _CN_FIXED):
        if _CN_META.same_mobile_and_fixed_line_pattern or _desc_match(nsn, _CN_MOBILE):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not _CN_META.same_mobile_and_fixed_line_pattern and _desc_match(nsn, _CN_MOBILE):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


# The time-zone data is keyed on "86" + at most this many national digits (1 today): memoise at that depth.
_CN_TZ_DEPTH = max([len(k) - 2 for k in pn_timezone.TIMEZONE_DATA if k.startswith("86")] + [1])
_CN_TZ: dict[str, str] = {}

_GEO: dict | None = None
_GEO_DEPTH = 9


def _area(number: PhoneNumber) -> str | None:
    """The geocoder's Chinese description (longest-prefix match on its data, as phonenumbers.geocoder does)."""
    return _area_for(str(number.country_code), phonenumbers.national_significant_number(number))


def _area_for(cc: str, nsn: str) -> str | None:
    global _GEO, _GEO_DEPTH
    if _GEO is None:
        from phonenumbers import geodata  # ~0.5 s to import: only when first needed

        _GEO, _GEO_DEPTH = geodata.GEOCODE_DATA, getattr(geodata, "GEOCODE_LONGEST_PREFIX", 9)
    key = cc + nsn
    for n in range(min(len(key), _GEO_DEPTH), len(cc), -1):
        entry = _GEO.get(key[:n])
        if entry:
            return entry.get("zh") or entry.get("en") or None
    return None


def _invalid_reason(number: PhoneNumber) -> str:
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code == 86:
        if nsn[:1] == "1" and len(nsn) >= 3 and nsn[1] in "3456789":  # mobile shape
            if len(nsn) < 11:
                return R_TOO_SHORT
            if len(nsn) > 11:
                return R_TOO_LONG
        if len(nsn) <= 6 and nsn[:1] in "19":  # 95588, 10086, 12345 …
            return R_SERVICE
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in (ValidationResult.TOO_SHORT, ValidationResult.INVALID_LENGTH):
        return R_TOO_SHORT if reason == ValidationResult.TOO_SHORT else R_INVALID
    if reason == ValidationResult.TOO_LONG:
        return R_TOO_LONG
    return R_INVALID


def _full(cleaned: str, region: str) -> NormalizedPhone:
    try:
        number = phonenumbers.parse(cleaned, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.TOO_SHORT_NSN or exc.error_type == NumberParseException.TOO_SHORT_AFTER_IDD:
            raise PhoneError(R_TOO_SHORT) from None
        if exc.error_type == NumberParseException.TOO_LONG:
            raise PhoneError(R_TOO_LONG) from None
        raise PhoneError(R_INVALID) from None
    verdict = _verdict(number, region)
    if isinstance(verdict, str):
        raise PhoneError(verdict)
    kind, tz, area = verdict
    return NormalizedPhone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind, tz, area)


def clean_phone_text(raw: object) -> str:
    """The digits (and a leading +) of what was typed; full-width characters folded, separators dropped."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():  # a number cell from a spreadsheet
        raw = int(raw)
    return str(raw).strip().translate(_TRANS)


def normalize_phone(raw: object, region: str = "CN", *, with_area: bool = True) -> NormalizedPhone:
    """Normalise a phone number as typed in a sample file.

    Parameters
    ----------
    raw : str
        The number as found: spaces, dashes, parentheses, ``+86``/``0086``/``86`` prefixes, full-width digits and
        leading-0 area codes (``010-12345678``, ``0755 8888 8888``) are accepted.
    region : str
        Region assumed for numbers without a country code (default ``CN``).
    with_area : bool
        Look up ``area`` (default). The sample import, which does not store it, passes False: on a mobile
        the area is then None (unless already memoised) and the lookup, a third of the cost of a memo miss,
        is skipped.

    Returns
    -------
    NormalizedPhone
        E.164 form, kind (``mobile``/``fixed``), IANA time zone and area (Chinese geocoder text or None).

    Raises
    ------
    PhoneError
        With a bilingual ``reason``: empty, not digits, too short/long, landline without area code,
        premium/service number, not a valid number.
    """
    if type(raw) is str and len(raw) == 11 and raw.isdigit() and raw.isascii():
        s = raw  # the common case, already clean
    else:
        s = clean_phone_text(raw)
    if not s:
        raise PhoneError(R_EMPTY)
    if region == "CN":
        # Fast path: an 11-digit mobile, possibly behind +86 / 0086 / 86.
        n = len(s)
        if n == 11:
            nsn = s
        elif n == 14 and s[:3] == "+86":
            nsn = s[3:]
        elif n == 15 and s[:4] == "0086":
            nsn = s[4:]
        elif n == 13 and s[:2] == "86":
            nsn = s[2:]
        else:
            nsn = ""
        if nsn and nsn[0] == "1" and nsn[1] in "3456789" and nsn.isdigit() and nsn.isascii():
            key = nsn[:7]
            verdict = _PREFIX_CACHE.get(key)
            if verdict is None:
                verdict = _PREFIX_CACHE[key] = _mobile_verdict(nsn, with_area)
            if isinstance(verdict, str):
                raise PhoneError(verdict)
            area = verdict[2]
            if area is _UNSET:
                if not with_area:
                    return NormalizedPhone("+86" + nsn, verdict[0], verdict[1], None)
                area = _area_for("86", nsn)
                _PREFIX_CACHE[key] = (verdict[0], verdict[1], area)
            return NormalizedPhone("+86" + nsn, verdict[0], verdict[1], area)
    body = s[1:] if s[:1] == "+" else s
    if not body.isdigit() or not body.isascii():
        if _SCI_RE.fullmatch(str(raw).strip()):
            raise PhoneError(R_SCIENTIFIC)
        raise PhoneError(R_CHARS)
    if region == "CN" and s[:1] != "+" and len(s) in (7, 8) and s[0] in "2345678":
        raise PhoneError(R_NO_AREA)
    return _full(s, region)


def normalize_phone_full(raw: object, region: str = "CN") -> NormalizedPhone:
    """Like :func:`normalize_phone` but always through the full phonenumbers parse (no memo); for checks."""
    s = clean_phone_text(raw)
    if not s:
        raise PhoneError(R_EMPTY)
    return _full(s, region)


def rejected_line_text(raw: object, limit: int = 40) -> str:
    """How a rejected input line is shown back: masked like a phone number when it holds enough digits to be
    one (7 or more), else as typed (trimmed to ``limit`` characters), so the person can find the bad line.

    >>> rejected_line_text("not-a-number")
    'not-a-number'
    >>> rejected_line_text("1380013800x")
    '138***3800'
    """
    text = str(raw if raw is not None else "").strip()
    if sum(ch.isdigit() for ch in text) >= 7:
        return mask_phone(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mask_phone(number: object) -> str:
    """Mask a number for display and logs: keep the first 3 and last 4 national digits (``138****1234``).

    Accepts E.164 or anything typed; Chinese landlines keep their trunk 0 (``010****5678``); numbers of other
    countries keep their ``+cc`` prefix. Never raises and never returns more than 7 digits of the number.
    """
    s = clean_phone_text(number)
    digits = "".join(ch for ch in s if ch.isdigit())
    prefix = ""
    if s.startswith("+"):
        if s.startswith("+86"):
            cc = "86"
        else:
            try:
                cc = str(phonenumbers.parse(s, None).country_code)
            except NumberParseException:
                cc = ""
        if cc == "86":
            digits = digits[2:]
            if digits and not (len(digits) == 11 and digits[0] == "1"):
                digits = "0" + digits  # landline: show as dialled nationally (010…)
        elif cc:
            prefix = f"+{cc} "
            digits = digits[len(cc):]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    n = len(digits)
    if n == 0:
        return "****"
    if n < 6:
        return prefix + "*" * n
    if n < 10:  # short numbers: hide at least half
        return prefix + digits[:2] + "*" * (n - 4) + digits[-2:]
    return prefix + digits[:3] + "*" * (n - 7) + digits[-4:]
