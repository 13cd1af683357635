"""Roles, CSRF, ownership of cases, and phone numbers masked everywhere but the holding interviewer's screen."""

from __future__ import annotations

from sqlalchemy import select

from cati.db import transaction
from cati.models import CallAttempt, CasePhone
from cati.telephony.simulated import SimScript

from .conftest import Console, attempt_of, csrf_of, login, wait_for


def test_console_needs_sign_in_and_the_interviewer_role(client, world):
    r = client.get("/interviewer")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.post("/interviewer/next", headers={"X-Requested-With": "fetch"}).status_code in (400, 401)
    login(client, "sue")  # a supervisor
    assert client.get("/interviewer").status_code == 403
    assert client.get("/interviewer/status").status_code == 403


def test_post_without_csrf_token_is_rejected(client, world):
    login(client, "ann")
    r = client.post("/interviewer/next")
    assert r.status_code == 400
    assert "表单已过期或无效" in r.get_data(as_text=True)
    r = client.post("/interviewer/next", headers={"X-CSRFToken": "forged"})
    assert r.status_code == 400
    token = csrf_of(client, "/interviewer")
    assert client.post("/interviewer/next", headers={"X-CSRFToken": token}).status_code == 302


def test_login_form_itself_needs_the_token(client, world):
    r = client.post("/login", data={"username": "ann", "password": "password-123"})
    assert r.status_code == 400


def _claim_and_dial(console_app, backend, world, session_factory):
    for i in world["case_ids"]:
        backend.scripts[f"+86139{i:08d}"] = SimScript("human", ring_s=0.2, amd_s=0.1)
    ann = Console(console_app.test_client(), "ann")
    case_id = ann.post("/interviewer/next").get_json()["case_id"]
    call_id = ann.post(f"/interviewer/case/{case_id}/dial").get_json()["call_id"]
    wait_for(lambda: attempt_of(session_factory, call_id).machine_detection == "HUMAN")
    assert ann.post(f"/interviewer/case/{case_id}/start").get_json()["ok"]
    return ann, case_id, call_id


def test_another_interviewers_case_is_forbidden(console_app, backend, world, session_factory):
    ann, case_id, call_id = _claim_and_dial(console_app, backend, world, session_factory)
    with session_factory() as s:
        from cati.models import Interview

        interview_id = s.scalar(select(Interview.id).where(Interview.case_id == case_id))
    bob = Console(console_app.test_client(), "bob")
    for path in (f"/interviewer/case/{case_id}/dial", f"/interviewer/case/{case_id}/start",
                 f"/interviewer/case/{case_id}/outcome", f"/interviewer/interview/{interview_id}/answer",
                 f"/interviewer/interview/{interview_id}/back", f"/interviewer/interview/{interview_id}/terminate",
                 f"/interviewer/call/{call_id}/hangup"):
        assert bob.post(path, {"code": "INTRO", "outcome": "2.112"}).status_code == 403, path
    assert bob.client.get(f"/interviewer/call/{call_id}/events").status_code == 403
    # Nothing changed for Ann: her interview still waits at its first question.
    with session_factory() as s:
        from cati.models import Interview

        assert s.get(Interview, interview_id).current_question == "INTRO"
        assert s.scalar(select(CallAttempt.outcome).where(CallAttempt.call_id == call_id)) is None


def test_full_number_only_on_the_holding_interviewers_screen(console_app, backend, world, session_factory):
    ann, case_id, call_id = _claim_and_dial(console_app, backend, world, session_factory)
    with session_factory() as s:
        number = s.scalar(select(CasePhone.e164).where(CasePhone.case_id == case_id))
    national = number[3:]
    grouped = f"{national[:3]} {national[3:7]} {national[7:]}"
    masked = f"{national[:3]}****{national[-4:]}"
    html = ann.page()
    assert grouped in html  # the holder sees it in full (grouped for reading)…
    assert masked in html  # …and the call history shows it masked
    bob = Console(console_app.test_client(), "bob")
    bob.post("/interviewer/next")  # Bob gets a different case
    html = bob.page()
    assert national not in html.replace(" ", "") and grouped not in html
    # A note quoting a number is masked in the history too.
    with transaction(session_factory) as s:
        s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id)).notes = f"请拨 {national} 找本人"
    html = ann.page()
    assert f"请拨 {masked} 找本人" in html
