"""The error messages of the rules, study, users and DNC screens are in the screen's language: on a zh-CN screen
no error message is ASCII-only (English). Browser-free: the Flask test client posts invalid input and reads the
flashed messages, the problems table and the warnings out of the HTML."""

from __future__ import annotations

import io
import re
from html import unescape

import yaml
from sqlalchemy import select

from cati.db import transaction
from cati.models import Role, User
from cati.services.studies import default_study_file

from .conftest import login
from .test_admin import admin_client, post  # noqa: F401 - admin_client is a fixture
from .test_supervisor import quick_user, sup_app, sworld  # noqa: F401 - fixtures

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
_FLASH = re.compile(r'<div class="flash flash-error"[^>]*>(.*?)</div>', re.S)
_PROBLEM = re.compile(r'<tr class="short">(?:<td[^>]*>.*?</td>){3}<td[^>]*>(.*?)</td></tr>', re.S)


def error_messages(html: str) -> list[str]:
    """The error flashes and the problem table's messages of a page."""
    problems = html.split('id="problems"', 1)[1] if 'id="problems"' in html else ""
    found = _FLASH.findall(html) + _PROBLEM.findall(problems)
    return [unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in found]


def assert_chinese(html: str, at_least: int = 1) -> list[str]:
    msgs = error_messages(html)
    assert len(msgs) >= at_least, f"expected error messages, found {msgs}"
    english = [m for m in msgs if not CJK.search(m)]
    assert not english, f"ASCII-only error messages on a zh-CN screen: {english}"
    return msgs


def test_rules_validation_errors_are_in_chinese(admin_client):  # noqa: F811
    rules = {"timezone_default": "Mars/Olympus", "max_attempts": "many",
             "windows": {"weekday": [["09:00", "12:00"], ["11:00", "21:00"]], "weekend": [["20:00", "10:00"]],
                         "holiday": []}}
    r = post(admin_client, "/admin/rules", {"rules": yaml.safe_dump(rules), "quota": "20"}, "/admin/rules")
    assert r.status_code == 422
    msgs = assert_chinese(r.get_data(as_text=True), at_least=5)
    assert any("重叠" in m for m in msgs) and any("时区" in m for m in msgs) and any("未知的键" in m for m in msgs)


def test_rules_yaml_and_quota_errors_are_in_chinese(admin_client):  # noqa: F811
    r = post(admin_client, "/admin/rules", {"rules": "windows: [", "quota": "20"}, "/admin/rules")
    assert_chinese(r.get_data(as_text=True))
    r = post(admin_client, "/admin/rules", {"rules": "- a list", "quota": "20"}, "/admin/rules")
    assert_chinese(r.get_data(as_text=True))
    r = post(admin_client, "/admin/rules", {"rules": "max_attempts: 8", "quota": "lots"}, "/admin/rules")
    assert_chinese(r.get_data(as_text=True))


def test_study_upload_errors_and_warnings_are_in_chinese(admin_client):  # noqa: F811
    data = yaml.safe_load(default_study_file().read_text(encoding="utf-8"))
    data["calling_rules"]["max_attempts"] = 0
    data["questions"][4]["scale"] = "nope"
    data["questions"][5]["ask_if"] = "NOPE == 1"
    data["indicators"][0]["weight"] = 0.5
    data["colour"] = "blue"
    bad = yaml.safe_dump(data, allow_unicode=True).encode()
    r = post(admin_client, "/admin/study", {"file": (io.BytesIO(bad), "mine.yaml")}, "/admin/study",
             content_type="multipart/form-data")
    assert r.status_code == 422
    msgs = assert_chinese(r.get_data(as_text=True), at_least=5)
    assert any("未知的量表" in m for m in msgs) and any("权重" in m for m in msgs)
    for broken in (b"id: [unclosed", b"- just\n- a list\n", b"id: a\nid: b\n"):
        r = post(admin_client, "/admin/study", {"file": (io.BytesIO(broken), "broken.yaml")}, "/admin/study",
                 content_type="multipart/form-data")
        assert r.status_code == 422
        assert_chinese(r.get_data(as_text=True))


def test_user_errors_are_in_chinese(admin_client, session_factory):  # noqa: F811
    c = admin_client
    for form in ({"username": "  ", "password": "long-enough-1", "role": "interviewer"},
                 {"username": "li", "password": "short", "role": "interviewer"},
                 {"username": "sue", "password": "long-enough-1", "role": "interviewer"}):
        post(c, "/admin/users", form)
        assert_chinese(c.get("/admin/users").get_data(as_text=True))
    with session_factory() as s:
        sue = s.scalar(select(User).where(User.username == "sue"))
    post(c, f"/admin/users/{sue.id}/password", {"password": "short"})
    assert_chinese(c.get("/admin/users").get_data(as_text=True))
    post(c, f"/admin/users/{sue.id}", {"role": "boss", "display_name": "Sue"})
    assert_chinese(c.get("/admin/users").get_data(as_text=True))
    post(c, "/admin/users/99999", {"role": "interviewer"})
    assert_chinese(c.get("/admin/users").get_data(as_text=True))


def test_dnc_errors_are_in_chinese(client, sworld, session_factory):  # noqa: F811
    with transaction(session_factory) as s:
        quick_user(s, "sue2", Role.SUPERVISOR)
    login(client, "sue2")
    post(client, "/supervisor/dnc", {"numbers": "abc\n123\n1e+10", "reason": "投诉"}, "/supervisor/sample")
    assert_chinese(client.get("/supervisor/sample").get_data(as_text=True))
    post(client, "/supervisor/dnc", {"numbers": "   ", "reason": ""}, "/supervisor/sample")
    assert_chinese(client.get("/supervisor/sample").get_data(as_text=True))
