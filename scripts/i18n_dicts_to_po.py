"""One-off: write the gettext catalogues from the dict tables they replace (so no text is lost).

    python scripts/i18n_dicts_to_po.py

Reads ``cati.web.i18n.T`` (web screens) and the tables of ``reports.i18n`` and writes
``cati/translations/<locale>/LC_MESSAGES/messages.po`` and ``reports/translations/<locale>/LC_MESSAGES/reports.po``
for zh_Hans_CN and en. Run once at the conversion; the tables are deleted afterwards, and the ``.po`` files are the
source from then on (kept in the history for the record).
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
_BRACE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(?:[!:][^}]*)?\}")


def write(table: dict[str, dict[str, str]], directory: Path, domain: str, project: str) -> None:
    for lang, locale in LOCALES.items():
        cat = Catalog(locale=locale, domain=domain, project=project, version="1", charset="utf-8",
                      copyright_holder="", msgid_bugs_address="")
        for key, texts in table.items():
            text = texts.get(lang) or ""
            flags = ["python-brace-format"] if _BRACE.search(texts.get("zh-CN", "") + texts.get("en", "")) else []
            cat.add(key, text, flags=flags)
        out = directory / locale / "LC_MESSAGES" / f"{domain}.po"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            write_po(fh, cat, width=110, sort_output=False, omit_header=False)
        print(f"{out.relative_to(ROOT)}: {len(table)} messages")


def web_table() -> dict[str, dict[str, str]]:
    from cati.web.i18n import T

    return {k: dict(v) for k, v in T.items()}


def reports_table() -> dict[str, dict[str, str]]:
    from reports import i18n as r

    table = {k: {"zh-CN": zh, "en": en} for k, (zh, en) in r._T.items()}
    for k, (zh, en) in r._TIERS.items():
        table[f"tier:{k}"] = {"zh-CN": zh, "en": en}
    for zh, en in r._QUADRANTS.items():
        table[f"quadrant:{zh}"] = {"zh-CN": zh, "en": en}
    for code, (_sym, zh, en) in r._DISPOSITIONS.items():
        table[f"disposition:{code}"] = {"zh-CN": zh, "en": en}
    for zh, en in r._INDUSTRIES.items():
        table[f"industry:{zh}"] = {"zh-CN": zh, "en": en}
    for k, (zh, en) in r._CORRECTIONS.items():
        table[f"correction:{k}"] = {"zh-CN": zh, "en": en}
    return table


if __name__ == "__main__":
    write(web_table(), ROOT / "cati" / "translations", "messages", "cati")
    write(reports_table(), ROOT / "reports" / "translations", "reports", "cati reports")
