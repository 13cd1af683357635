"""Administration: users and roles, study upload validated by the loader, the rules editor, the audit log."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
import yaml
from sqlalchemy import select

from cati.db import transaction
from cati.models import AuditLog, Role, Study, User
from cati.services.scheduling import rules_for
from cati.services.studies import default_study_file

from .conftest import csrf_of, login
from .test_supervisor import quick_user

STUDY_FILE = default_study_file()


@pytest.fixture
def admin_client(console_app, client, session_factory, study):
    with transaction(session_factory) as s:
        quick_user(s, "adm", Role.ADMIN)
        quick_user(s, "sue", Role.SUPERVISOR)
    r = login(client, "adm")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin")
    return client


def post(client, path, data=None, page="/admin/users", **kw):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_of(client, page)}, **kw)


def test_only_admins(console_app, client, session_factory, study):
    with transaction(session_factory) as s:
        quick_user(s, "sue", Role.SUPERVISOR)
    login(client, "sue")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/audit").status_code == 403


def test_create_and_update_users_audited(admin_client, session_factory):
    c = admin_client
    post(c, "/admin/users", {"username": "wang", "display_name": "王芳", "password": "long-enough-1",
                             "role": "interviewer", "extension": "8011", "refusal_converter": "1"})
    assert "已创建用户 wang" in c.get("/admin/users").get_data(as_text=True)
    post(c, "/admin/users", {"username": "wang", "password": "long-enough-1", "role": "interviewer"})
    html = c.get("/admin/users").get_data(as_text=True)
    assert "用户 wang 已存在" in html
    post(c, "/admin/users", {"username": "x", "password": "short", "role": "interviewer"})
    html = c.get("/admin/users").get_data(as_text=True)
    assert "密码至少 8 位" in html
    with session_factory() as s:
        wang = s.scalar(select(User).where(User.username == "wang"))
        assert wang.refusal_converter and wang.extension == "8011" and wang.role == Role.INTERVIEWER
        adm_id = s.scalar(select(User.id).where(User.username == "adm"))
    post(c, f"/admin/users/{wang.id}", {"display_name": "王芳", "role": "supervisor", "is_active": "1",
                                        "extension": ""})
    post(c, f"/admin/users/{adm_id}", {"role": "interviewer", "is_active": "1"})
    assert "不能取消自己的管理员权限" in c.get("/admin/users").get_data(as_text=True)
    with session_factory() as s:
        wang = s.get(User, wang.id)
        assert wang.role == Role.SUPERVISOR and not wang.refusal_converter and wang.extension is None
        assert s.get(User, adm_id).role == Role.ADMIN
        upd = s.scalar(select(AuditLog).where(AuditLog.action == "user.update"))
        assert upd.before["role"] == "interviewer" and upd.after["role"] == "supervisor"


def test_password_reset_signs_the_user_in_with_the_new_password(admin_client, session_factory, app):
    with session_factory() as s:
        sue = s.scalar(select(User).where(User.username == "sue"))
    post(admin_client, f"/admin/users/{sue.id}/password", {"password": "brand-new-pass"})
    other = app.test_client()
    assert login(other, "sue", "password-123").status_code == 401
    assert login(other, "sue", "brand-new-pass").status_code == 302


def test_study_upload_reports_every_problem_with_file_and_path(admin_client, session_factory):
    data = yaml.safe_load(STUDY_FILE.read_text(encoding="utf-8"))
    data["calling_rules"]["max_attempts"] = 0
    data["questions"][4]["scale"] = "nope"
    bad = yaml.safe_dump(data, allow_unicode=True).encode()
    r = post(admin_client, "/admin/study", {"file": (io.BytesIO(bad), "mine.yaml")}, "/admin/study",
             content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "未安装" in html
    assert "mine.yaml" in html and "calling_rules.max_attempts" in html and "questions[4].scale" in html
    r = post(admin_client, "/admin/study", {"file": (io.BytesIO(b"id: [unclosed"), "broken.yaml")},
             "/admin/study", content_type="multipart/form-data")
    assert r.status_code == 422 and "YAML 语法错误" in r.get_data(as_text=True)  # the zh-CN screen, in Chinese
    data = yaml.safe_load(STUDY_FILE.read_text(encoding="utf-8"))
    data["version"] = 2
    data["title"]["zh-CN"] = "第二版"
    good = yaml.safe_dump(data, allow_unicode=True).encode()
    r = post(admin_client, "/admin/study", {"file": (io.BytesIO(good), "v2.yaml")}, "/admin/study",
             content_type="multipart/form-data", follow_redirects=False)
    assert r.status_code == 200 and "已安装 csat_contact_center 第 2 版" in r.get_data(as_text=True)
    with session_factory() as s:
        st = s.scalar(select(Study))
        assert (st.version, st.title) == (2, "第二版")
        assert s.scalar(select(AuditLog.action)) == "study.upload"


def test_rules_editor_validates_and_saves(admin_client, session_factory):
    text = admin_client.get("/admin/rules").get_data(as_text=True)
    assert "09:00" in text and "max_attempts" in text
    rules = {"timezone_default": "Asia/Shanghai", "windows": {"weekday": [["09:00", "12:00"], ["11:00", "21:00"]]},
             "max_attempts": 8}
    r = post(admin_client, "/admin/rules", {"rules": yaml.safe_dump(rules), "quota": "20"}, "/admin/rules")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "calling_rules.windows.weekday" in html and "规则有误" in html
    r = post(admin_client, "/admin/rules", {"rules": "windows: [", "quota": "20"}, "/admin/rules")
    assert r.status_code == 422 and "YAML 语法错误" in r.get_data(as_text=True)
    rules["windows"]["weekday"] = [["09:00", "12:00"], ["13:00", "20:30"]]
    r = post(admin_client, "/admin/rules", {"rules": yaml.safe_dump(rules), "quota": "25"}, "/admin/rules")
    assert r.status_code == 302
    with session_factory() as s:
        st = s.scalar(select(Study))
        assert st.version == 2 and st.definition["version"] == 2
        compiled = rules_for(st)
        assert compiled.max_attempts == 8 and st.definition["quota"]["per_enterprise"] == 25
        assert str(compiled.weekday_windows[1][1]) == "20:30:00"
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "study.rules"))
        assert entry.before["calling_rules"]["max_attempts"] == 6 and entry.after["calling_rules"]["max_attempts"] == 8


def test_audit_log_search(admin_client, session_factory):
    from cati.services import audit

    with transaction(session_factory) as s:
        sue = s.scalar(select(User.id).where(User.username == "sue"))
        audit.record(s, user_id=sue, action="answer.change", entity="interview", entity_id=17,
                     before={"question": "B2", "code": 4}, after={"question": "B2", "code": 2}, note="录音核实后更正")
        audit.record(s, user_id=sue, action="case.stop", entity="case", entity_id=3, note="客户要求")
    c = admin_client
    html = unescape(c.get("/admin/audit?action=answer.change").get_data(as_text=True))
    rows = re.findall(r"<tr>\s*<td", html)
    assert len(rows) == 1 and "录音核实后更正" in html and '"question": "B2"' in html
    html = c.get("/admin/audit?q=客户").get_data(as_text=True)
    assert "case.stop" in html and "answer.change" not in html.split("<tbody>")[1]
    html = c.get("/admin/audit?entity=interview&entity_id=17&user=sue").get_data(as_text=True)
    assert "answer.change" in html.split("<tbody>")[1]
    html = c.get("/admin/audit?date_from=bad").get_data(as_text=True)
    assert "不是有效日期" in html


def test_admin_screens_in_english(admin_client):
    c = admin_client
    c.post("/lang", data={"lang": "en", "next": "/admin/users", "csrf_token": csrf_of(c, "/admin/users")})
    for path, text in {"/admin/users": "Users and roles", "/admin/study": "Study upload",
                       "/admin/rules": "Calling hours and rules", "/admin/audit": "Audit log"}.items():
        r = c.get(path)
        assert r.status_code == 200 and text in r.get_data(as_text=True), path


def test_the_admins_quota_change_is_enforced_through_the_21st_interview(admin_client, session_factory, study):
    """An enterprise at 20 of 20 refuses the 21st interview; the admin raises the quota per enterprise to 21 and
    the 21st interview starts; lowering it back closes the enterprise's open cases 4.80. An enterprise imported
    with a quota of its own keeps it."""
    from datetime import UTC, datetime

    from cati.db import transaction
    from cati.models import Case, CaseStatus, Enterprise
    from cati.services.interviews import start_interview
    from cati.services.scheduling import QuotaFull
    from tests import factories

    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        ent = factories.enterprise(s, st, quota=20, completes=20)
        own = factories.enterprise(s, st, quota=35, completes=3)
        case_id = factories.cases(s, st, ent, 3)[0]
        factories.cases(s, st, own, 2)
        iv = factories.user(s).id
        ent_id, own_id = ent.id, own.id
        # the interviewer holds the case (as after "next case" while the quota still had room)
        c = s.get(Case, case_id)
        c.status, c.claimed_by_id, c.claimed_at = CaseStatus.CLAIMED, iv, datetime.now(UTC)
    now = datetime.now(UTC)
    with transaction(session_factory) as s, pytest.raises(QuotaFull):
        start_interview(s, s.get(Case, case_id), iv, now)
    with session_factory() as s:
        rules = yaml.safe_dump(s.get(Study, study.id).definition["calling_rules"])
    r = post(admin_client, "/admin/rules", {"rules": rules, "quota": "21"}, "/admin/rules")
    assert r.status_code == 302
    assert "1 家企业的配额已改为 21" in admin_client.get("/admin/rules").get_data(as_text=True)
    with session_factory() as s:
        assert (s.get(Enterprise, ent_id).quota_target, s.get(Enterprise, own_id).quota_target) == (21, 35)
    with transaction(session_factory) as s:
        interview = start_interview(s, s.get(Case, case_id), iv, now)   # the 21st interview starts
        assert interview.id
    r = post(admin_client, "/admin/rules", {"rules": rules, "quota": "20"}, "/admin/rules")
    with session_factory() as s:
        others = s.scalars(select(Case).where(Case.enterprise_id == ent_id, Case.id != case_id)).all()
        assert {c.final_disposition for c in others} == {"4.80"}   # full again (20 + 1 running ≥ 20)
        assert s.get(Enterprise, own_id).quota_target == 35
