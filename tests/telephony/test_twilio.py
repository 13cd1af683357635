"""Twilio backend with the real SDK against a local REST look-alike; signed callbacks into the Flask app."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from cati.db import transaction
from cati.models.calls import AttemptStatus, CallAttempt
from cati.telephony.base import TelephonyError, auto_outcome
from cati.telephony.dialer import dial_and_commit
from cati.telephony.twilio_backend import (
    TwilioBackend,
    conference_twiml,
    local_http_client,
    twilio_status_event,
)
from cati.web.webhooks import webhooks

from .dbsetup import seed
from .fake_twilio import ACCOUNT, TOKEN, FakeTwilio

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def fake():
    f = FakeTwilio().start()
    yield f
    f.stop()


def make_backend(fake, token=TOKEN, callback_base="http://cati.test"):
    return TwilioBackend(ACCOUNT, token, "+8610000000", callback_base=callback_base,
                         http_client=local_http_client(fake.base_url))


def test_calls_create_carries_callbacks_amd_timeout_record_and_conference(fake):
    b = make_backend(fake)
    b.place_call("call-1", "+8613900000001", "1001", machine_detection=True, record=True, timeout_s=25)
    creates = [r for r in fake.requests if r["path"].endswith("/Calls.json")]
    assert len(creates) == 2 and all(r["auth"] for r in creates)
    ivr, resp = (r["form"] for r in creates)
    assert ivr["To"] == ["client:1001"] and "call-1</Conference>" in ivr["Twiml"][0]
    assert resp["To"] == ["+8613900000001"] and resp["From"] == ["+8610000000"]
    assert resp["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert resp["StatusCallback"] == ["http://cati.test/webhooks/twilio/status?call_id=call-1&leg=respondent"]
    assert (resp["MachineDetection"], resp["Timeout"], resp["Record"]) == (["Enable"], ["25"], ["true"])
    assert resp["Twiml"] == [conference_twiml("call-1", start_on_enter=True, end_on_exit=True)]
    assert "<Dial><Conference" in resp["Twiml"][0]


def test_supervisor_modes_hangup_and_recording(fake):
    b = make_backend(fake)
    b.place_call("call-2", "+8613900000002", "1001")
    ivr_sid = b.calls["call-2"]["interviewer"]
    b.listen("call-2", "9001")
    b.whisper("call-2", "9002")
    b.barge("call-2", "9003")
    parts = [r["form"] for r in fake.requests if r["path"].endswith("/Conferences/call-2/Participants.json")]
    assert [p.get("Muted") for p in parts] == [["true"], None, ["false"]]
    assert parts[1]["Coaching"] == ["true"] and parts[1]["CallSidToCoach"] == [ivr_sid]
    assert all(p["To"][0].startswith("client:900") for p in parts)
    b.start_recording("call-2", "call-2.wav")
    b.stop_recording("call-2")
    stop = [r for r in fake.requests if "/Recordings/Twilio.CURRENT.json" in r["path"]]
    assert stop[0]["form"]["Status"] == ["stopped"]
    b.hangup("call-2")
    ups = [r["form"]["Status"] for r in fake.requests if r["path"].endswith(f"/Calls/{ivr_sid}.json")]
    assert ups == [["completed"]]
    with pytest.raises(TelephonyError, match="unknown call"):
        b.listen("nope", "9001")


def test_ping_and_refused_credentials(fake):
    assert make_backend(fake).ping()["status"] == "active"
    with pytest.raises(TelephonyError, match="401"):
        make_backend(fake, token="wrong-token").ping()
    with pytest.raises(ValueError, match="E.164"):
        make_backend(fake).place_call("x", "13900000001", "1001")


def ts(sec):
    from email.utils import format_datetime

    return format_datetime(T0 + timedelta(seconds=sec))


@pytest.mark.parametrize("status, extra, kind, cause, dial", [
    ("initiated", {}, "placed", None, None),
    ("ringing", {}, "ringing", None, None),
    ("in-progress", {}, "answered", None, None),
    ("in-progress", {"AnsweredBy": "human"}, "answered_human", None, None),
    ("in-progress", {"AnsweredBy": "machine_end_beep"}, "answered_machine", None, None),
    ("completed", {"CallDuration": "30"}, "ended", 16, "ANSWER"),
    ("busy", {}, "ended", 17, "BUSY"),
    ("no-answer", {}, "ended", 19, "NOANSWER"),
    ("failed", {"SipResponseCode": "404"}, "ended", 1, "CHANUNAVAIL"),
    ("failed", {"SipResponseCode": "603"}, "ended", 21, "CHANUNAVAIL"),
    ("canceled", {}, "ended", None, "CANCEL"),
])
def test_status_mapping(status, extra, kind, cause, dial):
    ev = twilio_status_event("c", {"CallSid": "CA1", "CallStatus": status, "Timestamp": ts(7), **extra})
    assert (ev.kind, ev.hangup_cause, ev.dial_status) == (kind, cause, dial)
    assert ev.at == T0 + timedelta(seconds=7) and ev.backend_call_id == "CA1"
    assert twilio_status_event("c", {"CallSid": "CA1", "CallStatus": "queued"}) is None


# ------------------------------------------------------------------ webhooks against the Flask app


@pytest.fixture
def hooked_app(app):
    if "webhooks" not in app.blueprints:
        app.register_blueprint(webhooks)
    app.config["TWILIO_AUTH_TOKEN"] = TOKEN
    return app


def signed_post(client, url, form, token=TOKEN):
    sig = RequestValidator(token).compute_signature(f"http://localhost{url}", form)
    return client.post(url, data=form, headers={"X-Twilio-Signature": sig})


def new_attempt(app, study, number_of_cases=1):
    factory = app.extensions["cati.db"]["sessionmaker"]
    data = seed(factory, study, n=number_of_cases)
    from cati.models import Case, CasePhone, User
    from cati.telephony.dialer import start_attempt

    with transaction(factory) as s:
        case = s.get(Case, data["case_ids"][0])
        a = start_attempt(s, case, s.get(CasePhone, data["phones"][case.id]), s.get(User, data["interviewer_id"]),
                          "twilio", "preview", now=T0)
        return factory, a.call_id, case.id


def stored(factory, call_id):
    with factory() as s:
        return s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))


def test_webhook_rejects_unsigned_and_forged(hooked_app, study):
    factory, call_id, _ = new_attempt(hooked_app, study)
    c = hooked_app.test_client()
    url = f"/webhooks/twilio/status?call_id={call_id}&leg=respondent"
    form = {"CallSid": "CA1", "CallStatus": "ringing", "Timestamp": ts(1)}
    assert c.post(url, data=form).status_code == 403
    assert signed_post(c, url, form, token="not-our-token").status_code == 403
    sig = RequestValidator(TOKEN).compute_signature(f"http://localhost{url}", form)
    assert c.post(url, data=dict(form, CallStatus="completed"), headers={"X-Twilio-Signature": sig}).status_code == 403
    assert stored(factory, call_id).status == AttemptStatus.REQUESTED  # nothing was applied
    assert signed_post(c, url, form).status_code == 204
    assert stored(factory, call_id).status == AttemptStatus.RINGING


def test_webhook_idempotent_and_out_of_order(hooked_app, study):
    factory, call_id, case_id = new_attempt(hooked_app, study)
    c = hooked_app.test_client()
    url = f"/webhooks/twilio/status?call_id={call_id}&leg=respondent"
    seq = [
        {"CallSid": "CA9", "CallStatus": "initiated", "Timestamp": ts(0)},
        {"CallSid": "CA9", "CallStatus": "ringing", "Timestamp": ts(1)},
        {"CallSid": "CA9", "CallStatus": "no-answer", "Timestamp": ts(31), "CallDuration": "0"},
    ]
    for form in reversed(seq):  # completed first, then ringing, then initiated
        assert signed_post(c, url, form).status_code == 204
    for form in seq:  # and everything again
        assert signed_post(c, url, form).status_code == 204
    a = stored(factory, call_id)
    assert a.status == AttemptStatus.ENDED  # a late 'ringing' did not reopen the call
    assert (a.placed_at, a.ringing_at, a.ended_at) == (T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=31))
    assert (a.hangup_cause, a.outcome, a.outcome_source, a.backend_call_id) == (19, "3.13", "auto", "CA9")
    with factory() as s:
        from cati.models import Case

        case = s.get(Case, case_id)
        assert case.last_outcome == "3.13" and case.attempts == 1 and case.claimed_by_id is None


def test_webhook_unknown_call_and_interviewer_leg(hooked_app, study):
    c = hooked_app.test_client()
    assert signed_post(c, "/webhooks/twilio/status?call_id=nope", {"CallStatus": "ringing"}).status_code == 204
    assert signed_post(c, "/webhooks/twilio/status", {"CallStatus": "ringing"}).status_code == 400


# ------------------------------------------------------------------ end to end over real HTTP


@pytest.fixture
def served(hooked_app):
    server = make_server("127.0.0.1", 0, hooked_app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "reversed-and-repeated"])
def test_end_to_end_outcomes_over_http(hooked_app, study, served, shuffle):
    factory = hooked_app.extensions["cati.db"]["sessionmaker"]
    data = seed(factory, study, n=5)
    numbers = {}
    with factory() as s:
        from cati.models import CasePhone

        for cid in data["case_ids"]:
            numbers[cid] = s.get(CasePhone, data["phones"][cid]).e164
    outcomes = [("human", None), ("machine", "3.14"), ("busy", "3.12"), ("no-answer", "3.13"), ("failed", "4.31")]
    scripts = {numbers[cid]: {"outcome": o, "ring_s": 20} for cid, (o, _) in zip(data["case_ids"], outcomes,
                                                                              strict=True)}
    fake = FakeTwilio(scripts, shuffle=shuffle).start()
    try:
        backend = TwilioBackend(ACCOUNT, TOKEN, "+8610000000", callback_base=served,
                                http_client=local_http_client(fake.base_url))
        call_ids = [dial_and_commit(factory, backend, cid, None, data["interviewer_id"], "1001",
                                    machine_detection=True) for cid in data["case_ids"]]
        fake.wait_idle()
        assert all(code == 204 for _, _, code in fake.callbacks_sent)
        for call_id, (outcome, code) in zip(call_ids, outcomes, strict=True):
            a = stored(factory, call_id)
            assert a.status == AttemptStatus.ENDED, outcome
            assert a.outcome == code, outcome
            assert a.backend_call_id == backend.calls[call_id]["respondent"]
            assert a.placed_at is not None and a.ended_at >= a.placed_at  # Twilio stamps whole seconds
        human = stored(factory, call_ids[0])
        assert human.machine_detection == "HUMAN" and human.answered_at - human.ringing_at == timedelta(seconds=20)
        assert human.outcome_source is None  # a person answered: the interviewer codes it
        failed = stored(factory, call_ids[4])
        assert failed.hangup_cause == 1 and auto_outcome({"ended_at": failed.ended_at, "hangup_cause": 1}) == "4.31"
        with factory() as s:
            from cati.models import CasePhone

            assert s.get(CasePhone, failed.phone_id).status == "invalid"
    finally:
        fake.stop()


def test_webhook_behind_a_proxy_checks_the_public_url(hooked_app, study):
    factory, call_id, _ = new_attempt(hooked_app, study)
    hooked_app.config["TWILIO_WEBHOOK_BASE_URL"] = "https://cati.example.com"
    c = hooked_app.test_client()
    path = f"/webhooks/twilio/status?call_id={call_id}&leg=respondent"
    form = {"CallSid": "CA5", "CallStatus": "ringing", "Timestamp": ts(1)}
    assert signed_post(c, path, form).status_code == 403  # signed for the internal URL: not what Twilio signs
    sig = RequestValidator(TOKEN).compute_signature(f"https://cati.example.com{path}", form)
    assert c.post(path, data=form, headers={"X-Twilio-Signature": sig}).status_code == 204
    assert stored(factory, call_id).ringing_at == T0 + timedelta(seconds=1)
