"""Labels for reports, zh-CN first and en on request.

Everything a reader sees that does not come from the study file (indicator and item names come from the scoring
spec) is looked up in the gettext catalogue of the ``reports`` domain,
``reports/translations/<locale>/LC_MESSAGES/reports.po`` (zh_Hans_CN and en), so a translation is one edit in one
file per language. Keys: plain labels (``sec_overall``), ``tier:<tier>``, ``quadrant:<zh name>``,
``disposition:<code>``, ``industry:<zh tag>``, ``correction:<method>``; ``{field}`` placeholders are filled with
``str.format``.

The reports have a domain (and directory) of their own rather than sharing the app's ``messages``: the same short
keys mean different texts in the two (``completes`` is 成功 on a console but 成功样本 in a report table), and
``reports`` imports nothing from ``cati``, so it reads its catalogue itself with Babel (compiled in memory from the
``.po`` file on first use, as :mod:`cati.i18n` does for the app).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

__all__ = ["LANGS", "t", "check_lang", "indicator_names", "item_names", "tier_label", "quadrant_label",
           "disposition_label", "industry_label", "correction_label", "messages"]

LANGS = ("zh-CN", "en")
DOMAIN = "reports"
TRANSLATIONS_DIR = Path(__file__).with_name("translations")
_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}


@functools.cache
def messages(lang: str) -> dict[str, str]:
    """Key → text of every translated message of ``lang`` in the ``reports`` catalogue (read once)."""
    locale = _LOCALES["zh-CN" if str(lang).startswith("zh") else "en"]
    with open(TRANSLATIONS_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def _text(key: str, lang: str) -> str | None:
    return messages(lang).get(key) or messages("zh-CN").get(key)


#: The scoring's four quadrant names (zh-CN, as scoring writes them), in its order.
_QUADRANTS = ("重点关注领域", "必备条件", "卓越企业需关注", "行业基本达标")

# AAPOR telephone dispositions (docs), the group symbol of each code; the descriptions are in the catalogue.
_SYMBOLS: dict[str, str] = {
    "1.1": "I",
    "1.2": "P",
    "2.10": "R",
    "2.11": "R",
    "2.111": "R",
    "2.112": "R",
    "2.12": "R",
    "2.20": "NC",
    "2.21": "NC",
    "2.22": "NC",
    "2.221": "NC",
    "2.222": "NC",
    "2.29": "NC",
    "2.30": "O",
    "2.31": "O",
    "2.32": "O",
    "2.33": "O",
    "2.90": "O",
    "3.10": "UH",
    "3.11": "UH",
    "3.12": "UH",
    "3.13": "UH",
    "3.14": "UH",
    "3.15": "UH",
    "3.16": "UH",
    "3.20": "UO",
    "3.90": "UO",
    "3.91": "UO",
    "4.10": "NE",
    "4.20": "NE",
    "4.30": "NE",
    "4.31": "NE",
    "4.32": "NE",
    "4.51": "NE",
    "4.70": "NE",
    "4.80": "NE",
}


def industry_label(industry: Any, lang: str = "zh-CN") -> str:
    """Industry tag as stored (zh-CN) or its English name for the 15 reference tags; others pass through."""
    s = "" if industry is None or industry != industry else str(industry)
    return s if lang == "zh-CN" else messages(lang).get(f"industry:{s}", s)


def correction_label(method: Mapping[str, Any], lang: str = "zh-CN") -> str:
    """Name of the multiple-comparison correction scoring used, from its method dict."""
    code = str(method.get("tier_correction_method") or method.get("tier_correction") or "")
    text = _text(f"correction:{code}", lang) if code else None
    if text is not None:
        return text
    return str(method.get("multiple_comparison_correction") or code or "—")


def check_lang(lang: str) -> str:
    """Return ``lang`` if supported, else raise ``ValueError`` naming the choices."""
    if lang not in LANGS:
        raise ValueError(f"lang: {lang!r} is not supported; use one of {', '.join(LANGS)}")
    return lang


def t(key: str, lang: str = "zh-CN", **fmt: Any) -> str:
    """Label ``key`` in ``lang``; keyword arguments fill ``{placeholders}``. An unknown key raises ``KeyError``.

    >>> t("sec_overall", "zh-CN"), t("top_n_note", "en", n=3)
    ('总体情况', '3 enterprises')
    """
    text = _text(key, lang)
    if text is None:
        raise KeyError(f"reports.i18n: no message {key!r} in the reports catalogue")
    return text.format(**fmt) if fmt else text


def tier_label(tier: Any, lang: str = "zh-CN") -> str:
    text = _text(f"tier:{tier}", lang)
    if text is None:
        return "" if tier is None or tier != tier else str(tier)
    return text


def quadrant_label(quadrant: Any, lang: str = "zh-CN") -> str:
    q = "" if quadrant is None or quadrant != quadrant else str(quadrant)
    if lang == "zh-CN" or q not in _QUADRANTS:
        return q
    return _text(f"quadrant:{q}", lang) or q


def quadrant_names() -> tuple[str, ...]:
    """The four quadrant names in the order scoring uses them."""
    return _QUADRANTS


def disposition_label(code: Any, lang: str = "zh-CN") -> tuple[str, str]:
    """(AAPOR symbol, description) of a disposition code; unknown codes come back as ('', code).

    >>> disposition_label("2.112", "en"), disposition_label("4.311", "zh-CN")
    (('R', 'Known-respondent refusal'), ('NE', '空号'))
    """
    key = str(code).strip()
    found = key if key in _SYMBOLS else None
    if found is None and "." in key:
        head, tail = key.split(".", 1)
        found = next((c for c in (f"{head}.{tail[:2]}", f"{head}.{tail[:1]}0") if c in _SYMBOLS), None)
    if found is None:
        return "", key
    return _SYMBOLS[found], _text(f"disposition:{found}", lang) or key


def indicator_names(spec: Any, lang: str = "zh-CN") -> dict[str, str]:
    """First-level indicator code → name from the scoring spec."""
    names: Mapping[str, str] = spec.indicator_names_zh if lang == "zh-CN" else spec.indicator_names_en
    return dict(names)


def item_names(spec: Any, lang: str = "zh-CN") -> dict[str, str]:
    """Item code → short neutral label from the scoring spec (A1 … F4, plus Q0 / CB1 when present)."""
    names: Mapping[str, str] = spec.item_names_zh if lang == "zh-CN" else spec.item_names_en
    return dict(names)
