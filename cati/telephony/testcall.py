"""One test call through the console's own dialer path, charged to no real case.

``cati telephony test-call`` and the lab tests use :func:`run_test_call`. The call goes through exactly what
the interviewer's console uses — :func:`~cati.telephony.dialer.dial_and_commit` (the attempt is committed
before the call is placed), the backend's ``place_call``, the stored events folded by
:func:`~cati.telephony.dialer.apply_event` (through :class:`~cati.telephony.dialer.BatchingEventSink`, or a
separate ``cati telephony worker``) and :func:`~cati.telephony.base.auto_outcome` — but on a scratch SQLite
database with one throw-away case, so no real case, quota or contact model is touched.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from .base import TelephonyBackend, TelephonyError

STUDY_FILE = Path(__file__).resolve().parents[2] / "config" / "studies" / "csat_contact_center.yaml"
TEST_USER = "telephony-test-call"


@dataclass
class ScratchCase:
    case_id: int
    phone_id: int
    interviewer_id: int


@dataclass
class TestCallResult:
    call_id: str | None
    outcome: str | None
    source: str | None
    cause: int | None
    dial_status: str | None
    amd: str | None
    ringing: bool
    answered: bool
    ended: bool
    legs_left: int
    recording: str | None = None
    note: str | None = None

    def line(self) -> str:
        """The one line ``cati telephony test-call`` prints."""
        yn = {True: "yes", False: "no"}
        return (f"outcome={self.outcome or 'none'} source={self.source or 'none'} "
                f"cause={self.cause if self.cause is not None else 'none'} "
                f"dial_status={self.dial_status or 'none'} amd={self.amd or 'none'} ringing={yn[self.ringing]} "
                f"answered={yn[self.answered]} ended={yn[self.ended]} legs_left={self.legs_left}")


def scratch_database(directory: str | Path | None = None) -> tuple[str, sessionmaker]:
    """A migrated SQLite file with the default study installed: ``(url, sessionmaker)``."""
    from cati.db import make_engine, make_sessionmaker, transaction
    from cati.migrate import upgrade
    from cati.services.studies import install_study

    directory = Path(directory or tempfile.mkdtemp(prefix="cati-test-call-"))
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'test-call.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        install_study(s, STUDY_FILE)
    return url, factory


def scratch_case(factory: sessionmaker, number: str, extension: str) -> ScratchCase:
    """A throw-away enterprise, case and phone for ``number``, and a test interviewer on ``extension``."""
    import secrets

    from cati.db import transaction
    from cati.models import Case, CasePhone, CaseStatus, Enterprise, Industry, Study, User
    from cati.services.users import create_user

    e164 = number if number.startswith("+") else f"+{number}"
    now = datetime.now(UTC)
    with transaction(factory) as s:
        # A study of the call's own: the same number may be tested twice at once (a study holds a number once).
        template = s.scalars(select(Study).order_by(Study.id)).first()
        study = Study(code=f"test-call-{secrets.token_hex(6)}", version=template.version, title=template.title,
                      definition=template.definition, source_file=template.source_file)
        s.add(study)
        s.flush()
        industry = s.scalar(select(Industry).where(Industry.name == "test")) or Industry(name="test")
        s.add(industry)
        s.flush()
        ent = Enterprise(study_id=study.id, external_id=f"TEST-{secrets.token_hex(4)}", name="telephony test",
                         industry_id=industry.id, province="-", quota_target=1, completes=0)
        s.add(ent)
        s.flush()
        case = Case(study_id=study.id, enterprise_id=ent.id, case_ref=f"T{secrets.token_hex(6)}", replicate=1,
                    status=CaseStatus.READY, timezone="UTC", next_call_at=now, attempts=0, tried_day_parts=0,
                    needs_converter=False, attributes={}, imported_at=now)
        s.add(case)
        s.flush()
        phone = CasePhone(study_id=study.id, case_id=case.id, position=1, e164=e164, kind="mobile",
                          timezone="UTC", status="ok", attempts=0)
        s.add(phone)
        user = s.scalar(select(User).where(User.username == TEST_USER))
        if user is None:
            user = create_user(s, TEST_USER, secrets.token_urlsafe(16), "interviewer", extension=extension)
        else:
            user.extension = extension
        s.flush()
        return ScratchCase(case.id, phone.id, user.id)


def run_test_call(backend: TelephonyBackend, factory: sessionmaker, number: str, extension: str, *,
                  record: bool = False, hangup_after: float | None = None, timeout: float = 60.0,
                  ring_timeout: int = 30, machine_detection: bool = True, store_events: bool = True,
                  legs_grace: float = 3.0) -> TestCallResult:
    """Place one call like the console does and wait for its end.

    Parameters
    ----------
    backend : any telephony backend (events on when ``store_events``; an action-only AMI connection when a
        ``cati telephony worker`` stores the events into ``factory``'s database).
    number, extension : the respondent's number (E.164 or digits) and the interviewer's phone.
    record : record the call (the dialplan's MixMonitor).
    hangup_after : hang up this many seconds after the respondent is connected (the answer; with machine
        detection, its HUMAN/NOTSURE verdict), as the interviewer's "hang up" does; else wait for the far end.
    timeout : give up waiting after this many seconds (the call is then hung up, ``ended`` says whether it
        ended by itself in time).
    ring_timeout : seconds the respondent may ring (the console's default is 30).
    legs_grace : ``legs_left`` counts the call's channels still up this many seconds after the end.
    """
    from cati.models.calls import AttemptStatus, CallAttempt
    from cati.telephony.dialer import BatchingEventSink, dial_and_commit

    scratch = scratch_case(factory, number, extension)
    sink = unsubscribe = None
    if store_events:
        sink = BatchingEventSink(factory)
        unsubscribe = backend.subscribe(sink)
    call_id = None
    note = None
    try:
        try:
            call_id = dial_and_commit(factory, backend, scratch.case_id, scratch.phone_id, scratch.interviewer_id,
                                      extension, mode="preview", record=record,
                                      machine_detection=machine_detection, timeout_s=ring_timeout)
        except TelephonyError as exc:
            note = str(exc)
        deadline = time.monotonic() + timeout
        hung = False
        attempt = None
        connected_at = None  # when the interviewer is talking to the respondent (after AMD's verdict)
        while call_id and time.monotonic() < deadline:
            with factory() as s:
                attempt = s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
                if attempt is not None and attempt.status == AttemptStatus.ENDED:
                    break
                if connected_at is None and attempt is not None and attempt.answered_at is not None and (
                        not machine_detection or attempt.machine_detection in ("HUMAN", "NOTSURE")):
                    connected_at = time.monotonic()
            if hangup_after is not None and not hung and connected_at is not None:
                if time.monotonic() - connected_at >= hangup_after:
                    backend.hangup(call_id)
                    hung = True
            time.sleep(0.05)
        ended_in_time = attempt is not None and attempt.status == AttemptStatus.ENDED
        if call_id and not ended_in_time:
            try:
                backend.hangup(call_id)
            except TelephonyError:
                pass
        legs_left = 0
        if call_id:
            time.sleep(legs_grace)
            legs_left = len(backend.live_legs(call_id))
        if sink is not None:
            sink.flush()
        if call_id is None:
            with factory() as s:
                attempt = s.scalars(select(CallAttempt).where(CallAttempt.case_id == scratch.case_id)).first()
        else:
            with factory() as s:
                attempt = s.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        if attempt is None:
            return TestCallResult(call_id, None, None, None, None, None, False, False, False, legs_left, note=note)
        return TestCallResult(
            call_id=call_id, outcome=attempt.outcome, source=attempt.outcome_source, cause=attempt.hangup_cause,
            dial_status=attempt.dial_status, amd=attempt.machine_detection, ringing=attempt.ringing_at is not None,
            answered=attempt.answered_at is not None, ended=ended_in_time, legs_left=legs_left,
            recording=attempt.recording_uri, note=note or attempt.notes,
        )
    finally:
        if unsubscribe is not None:
            unsubscribe()
        if sink is not None:
            sink.close()
