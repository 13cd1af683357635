"""An interview run end to end with each backend against the local servers: claim a case, dial, the
respondent answers (machine detection says human), the interviewer completes the questionnaire, hangs up;
the attempt keeps its timings and the interviewer's code, the case is final."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from cati.db import transaction
from cati.models import Case, CasePhone, CaseStatus, Study
from cati.models.calls import AttemptStatus, CallAttempt
from cati.services.interviews import complete_interview, questionnaire_for, save_answer, start_interview
from cati.services.scheduling import Claim, next_case
from cati.telephony.ami import AmiBackend
from cati.telephony.amisim import AmiSimServer, Script
from cati.telephony.dialer import BatchingEventSink, dial_and_commit
from cati.telephony.simulated import SimScript, SimulatedBackend
from cati.telephony.twilio_backend import TwilioBackend, local_http_client
from cati.web.webhooks import webhooks
from tests import factories as f
from tests.services.test_interviews import FULL

from .fake_twilio import ACCOUNT, TOKEN, FakeTwilio

NOW = f.MONDAY_10AM


def wait_for(factory, call_id, pred, timeout=10.0, tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            tick()
        with factory() as s:
            a = s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
            if a is not None and pred(a):
                return a
        time.sleep(0.02)
    raise AssertionError(f"attempt {call_id} never reached the expected state")


@pytest.mark.parametrize("kind", ["simulated", "asterisk-panoramisk", "asterisk-asterisk-ami", "twilio"])
def test_interview_end_to_end(app, study, kind):
    factory = app.extensions["cati.db"]["sessionmaker"]
    with transaction(factory) as s:
        st = s.get(Study, study.id)
        ent = f.enterprise(s, st, quota=5)
        f.cases(s, st, ent, 1)
        iv = f.user(s, extension="1001")
        iv_id = iv.id
    with transaction(factory) as s:
        claim = next_case(s, s.get(Study, study.id), iv_id, NOW)
        assert isinstance(claim, Claim)
        number = s.get(Case, claim.case_id).phones[0].e164
    cleanup = []
    tick = None
    if kind == "simulated":
        clock = {"t": NOW}
        backend = SimulatedBackend(lambda: clock["t"], scripts={number: SimScript("human", ring_s=6)})

        def tick():
            from datetime import timedelta

            clock["t"] += timedelta(seconds=1)
            backend.tick()
    elif kind.startswith("asterisk"):
        sim = AmiSimServer(scripts={number.lstrip("+"): Script("human", ring_s=6, amd_s=2, talk_s=100_000)},
                           time_scale=0.01)
        sim.start()
        cleanup.append(sim.stop)
        backend = AmiBackend(sim.host, sim.port, "cati", "good", client=kind.split("-", 1)[1])
    else:
        if "webhooks" not in app.blueprints:
            app.register_blueprint(webhooks)
        app.config["TWILIO_AUTH_TOKEN"] = TOKEN
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cleanup.append(server.shutdown)
        fake = FakeTwilio({number: {"outcome": "human", "ring_s": 6, "real_talk_s": 30}}).start()
        cleanup.append(fake.stop)
        backend = TwilioBackend(ACCOUNT, TOKEN, "+8610000000", callback_base=f"http://127.0.0.1:{server.server_port}",
                                http_client=local_http_client(fake.base_url))
    sink = BatchingEventSink(factory)
    if kind != "twilio":  # Twilio's events reach the database through the signed webhooks
        backend.subscribe(sink)
    try:
        call_id = dial_and_commit(factory, backend, claim.case_id, None, iv_id, "1001", machine_detection=True,
                                  now=NOW)
        a = wait_for(factory, call_id, lambda a: a.machine_detection == "HUMAN", tick=tick)
        assert a.status == AttemptStatus.ANSWERED and a.outcome is None
        with transaction(factory) as s:
            interview = start_interview(s, s.get(Case, claim.case_id), iv_id, NOW, attempt_id=a.id)
            q = questionnaire_for(s.get(Study, study.id))
            code = interview.current_question
            while code is not None:
                code = save_answer(s, interview, code, FULL[code], user_id=iv_id, now=NOW).step.next_code
            assert q.is_complete
            complete_interview(s, interview, NOW, user_id=iv_id)
        backend.hangup(call_id)
        a = wait_for(factory, call_id, lambda a: a.status == AttemptStatus.ENDED, tick=tick)
        sink.flush()
        assert (a.outcome, a.outcome_source) == ("1.1", "interviewer")  # the hang-up did not overwrite it
        assert a.placed_at <= a.ringing_at < a.answered_at <= a.ended_at
        assert (a.answered_at - a.ringing_at).total_seconds() >= 6
        assert a.hangup_cause == 16 and a.backend == backend.name and a.backend_call_id
        with factory() as s:
            case = s.get(Case, claim.case_id)
            assert (case.status, case.final_disposition, case.attempts) == (CaseStatus.FINAL, "1.1", 1)
            assert s.get(CasePhone, a.phone_id).attempts == 1
    finally:
        sink.close()
        backend.close()
        for fn in cleanup:
            fn()


@pytest.mark.parametrize("client", ["panoramisk", "asterisk-ami"])
def test_web_worker_places_event_worker_stores_and_reconciles(app, study, client):
    """Production shape: a web process dials on an action-only AMI connection; one event worker (which never
    saw the Originate) adopts the call from its CATI_CALL_ID and stores the attempt; reconciliation ends
    attempts the server no longer has."""
    from datetime import timedelta

    from cati.telephony.dialer import reconcile_attempts, run_event_worker

    factory = app.extensions["cati.db"]["sessionmaker"]
    with transaction(factory) as s:
        st = s.get(Study, study.id)
        ent = f.enterprise(s, st, quota=5)
        ids = f.cases(s, st, ent, 2)
        iv = f.user(s, extension="1001")
        iv_id = iv.id
        busy_number = s.get(Case, ids[0]).phones[0].e164
    sim = AmiSimServer(scripts={busy_number.lstrip("+"): Script("busy")}, default=Script("human", talk_s=10_000),
                       time_scale=0.01)
    sim.start()
    web = AmiBackend(sim.host, sim.port, "cati", "good", client=client, events=False)
    worker = AmiBackend(sim.host, sim.port, "cati", "good", client=client)
    stop = threading.Event()
    loop = threading.Thread(target=run_event_worker, args=(factory, worker, stop), kwargs={"reconcile_every": 0.1})
    loop.start()
    seen_by_web = []
    web.subscribe(seen_by_web.append)
    try:
        # Dialed at the real time: the worker's own reconciliation (every 0.1 s, on the real clock) then leaves
        # these calls alone for its grace period. Dialed at a past NOW, it could end the busy call as lost
        # (cause 41) in the moment between the server dropping the channel and the worker storing its hangup.
        start = datetime.now(UTC)
        busy_call = dial_and_commit(factory, web, ids[0], None, iv_id, "1001", now=start)
        a = wait_for(factory, busy_call, lambda a: a.status == AttemptStatus.ENDED)
        assert (a.hangup_cause, a.outcome, a.outcome_source) == (17, "3.12", "auto")
        assert seen_by_web == []  # the web process got no events
        live_call = dial_and_commit(factory, web, ids[1], None, iv_id, "1001", now=start)
        wait_for(factory, live_call, lambda a: a.answered_at is not None)
        later = start + timedelta(hours=1)
        # a supervisor on another web process (events off) can still listen: the leg comes from the server
        web.listen(live_call, "9001")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(sp["active"] for sp in sim.spies):
            time.sleep(0.02)
        assert sim.spies[-1]["spyee"].uniqueid == f"{live_call};2" and sim.spies[-1]["mode"] == "listen"
        time.sleep(0.3)  # the worker reconciled a few times: the live call is still up
        with factory() as s:
            a = s.scalar(select(CallAttempt).where(CallAttempt.call_id == live_call))
            assert a.status == AttemptStatus.ANSWERED
        with transaction(factory) as s:
            assert reconcile_attempts(s, "asterisk", worker.live_call_ids(), later) == []  # still up
            assert reconcile_attempts(s, "asterisk", set(), later) == [live_call]  # server lost it
        a = wait_for(factory, live_call, lambda a: a.status == AttemptStatus.ENDED)
        assert a.hangup_cause == 41 and a.outcome is None  # answered: the interviewer codes it
    finally:
        stop.set()
        loop.join(5)
        web.close()
        worker.close()
        sim.stop()
