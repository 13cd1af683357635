"""The message catalogues are complete: every message has its zh-CN and en text, and every key the code uses is
in the catalogue of its domain (``messages`` for cati/, ``reports`` for reports/)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from cati import i18n
from reports import i18n as rep

ROOT = Path(__file__).resolve().parents[2]

#: ``t("key")``, ``tr("key")``, ``translate("key")``, ``gettext("key")`` and keyed errors ``...Error("key"``,
#: ``KeyedText("key"`` / ``_k("key"`` (the services' keyed errors are listed by name); a conditional ``t("a" if x else "b")`` gives both keys.
_CALL = re.compile(r"""(?<![\w.])(?:t|tr|sup\.tr|translate|gettext|_k|KeyedText|KeyedError|UserError|PhoneError|SampleAdminError|QCError)\(\s*(?P<args>["'][a-z][\w:.]*["'](?:\s+if\s+[^()]*?\s+else\s+["'][a-z][\w:.]*["'])?)(?=\s*[,)])""")
_KEY = re.compile(r"""["']([a-z][\w:.]*)["']""")


def _keys_used(paths: list[Path]) -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for m in _CALL.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            args = m.group("args")
            keys = _KEY.findall(args)[:1] + (_KEY.findall(args.rsplit(" else ", 1)[1]) if " else " in args else [])
            for key in keys:
                used.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{line}")
    return used


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


CATALOGUES = [
    pytest.param(lambda lang: i18n.messages(lang), lambda lang: i18n.catalogue(lang), id="messages"),
    pytest.param(rep.messages, None, id="reports"),
]


@pytest.mark.parametrize(("messages", "catalogue"), CATALOGUES)
def test_every_message_has_both_languages_with_the_same_fields(messages, catalogue):
    zh, en = messages("zh-CN"), messages("en")
    assert zh, "the zh-CN catalogue is empty"
    assert not sorted(set(zh) - set(en)), "keys without an English text"
    assert not sorted(set(en) - set(zh)), "keys without a Chinese text"
    for key in zh:
        assert zh[key].strip() and en[key].strip(), key
        if not key.startswith("pyd_"):  # pyd_*: the English is pydantic's own message ({msg}), the Chinese ours
            assert _fields(zh[key]) == _fields(en[key]), f"{key}: the two texts take different fields"
    if catalogue is not None:  # and nothing hides as fuzzy or empty in the .po files themselves
        for lang in ("zh-CN", "en"):
            bad = [m.id for m in catalogue(lang) if m.id and (not m.string or m.fuzzy)]
            assert not bad, f"{lang}: messages without a text or marked fuzzy: {bad}"


def test_every_key_used_in_cati_is_in_the_messages_catalogue():
    files = sorted((ROOT / "cati").rglob("*.py")) + sorted((ROOT / "cati" / "web" / "templates").rglob("*.html"))
    files = [f for f in files if "migrations" not in f.parts and f.name != "amisim.py"]
    used = _keys_used(files)
    assert len(used) > 300, "the scan found too few keys: the pattern no longer matches the call sites"
    known = i18n.messages("zh-CN")
    missing = {k: v for k, v in used.items() if k not in known}
    assert not missing, f"keys used but not in cati/translations: {missing}"


def test_every_key_used_in_reports_is_in_the_reports_catalogue():
    used = _keys_used(sorted((ROOT / "reports").glob("*.py")))
    assert len(used) > 80
    known = rep.messages("zh-CN")
    missing = {k: v for k, v in used.items() if k not in known}
    assert not missing, f"keys used but not in reports/translations: {missing}"


def test_a_missing_key_raises_when_strict_and_shows_itself_otherwise():
    with pytest.raises(i18n.MissingTranslation):
        i18n.lookup("no_such_key", "en", strict=True)
    assert i18n.gettext("no_such_key", "en") == "no_such_key"


def test_keyed_errors_read_in_english_and_render_in_chinese():
    from cati.services.users import UserError

    err = UserError("user_exists", username="li")
    assert str(err) == "user 'li' already exists"
    assert i18n.render(err, "zh-CN") == "用户 li 已存在"
    text = i18n.KeyedText("sv_min_gt_max", lo=5, hi=1)
    assert text == "min 5 is greater than max 1" and "大于" in i18n.render(text, "zh-CN")


def test_babel_cfg_maps_the_sources_for_pybabel():
    cfg = (ROOT / "babel.cfg").read_text(encoding="utf-8")
    assert "[python: cati/**.py]" in cfg and "[jinja2: cati/web/templates/**.html]" in cfg
    assert "[python: reports/**.py]" in (ROOT / "babel-reports.cfg").read_text(encoding="utf-8")


def test_sample_admin_error_still_takes_two_finished_texts():
    from cati.services.sample_admin import SampleAdminError

    err = SampleAdminError("时间格式错误：x", "not a date-time: x")  # the form web/supervisor.py still raises
    assert (str(err), i18n.render(err, "zh-CN"), i18n.render(err, "en")) == (
        "not a date-time: x", "时间格式错误：x", "not a date-time: x")
    keyed = SampleAdminError("datetime_invalid", value="x")
    assert (str(keyed), keyed.message("zh-CN")) == ("not a date-time: x", "时间格式错误：x")
