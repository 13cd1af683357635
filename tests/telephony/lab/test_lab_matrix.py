"""Every behaviour of the lab's outside world, through the console's dialer path, against a real Asterisk.

Each combination of AMI client (panoramisk, asterisk-ami) and process shape (events stored in process; or an
action-only connection placing calls while a separate ``cati telephony worker`` process stores the events) places
all scenarios at once, each from its own interviewer phone, and checks the attempt the database ends with: the
automatic outcome and its source, the hangup cause, AMD's verdict, whether it rang and was answered, and that no
channel of the call is left up on the PBX 3 s after the end.
"""

from __future__ import annotations

import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from cati.models import Case
from cati.models.calls import CallAttempt
from cati.telephony.lab import BEHAVIOURS, BUSY_PHONE, UNREACHABLE_PHONE
from cati.telephony.testcall import run_test_call

from .conftest import CLIENTS, SHAPES, Worker, backend_for

#: scenario → (number, extension, run options, expected fields of TestCallResult)
SCENARIOS: dict[str, tuple[str, str, dict, dict]] = {
    "person": (BEHAVIOURS["person"], "1001", {"hangup_after": 1.5},
               dict(outcome=None, source=None, amd="HUMAN", ringing=True, answered=True, cause=16)),
    "machine": (BEHAVIOURS["machine"], "1002", {},
                dict(outcome="3.14", source="auto", amd="MACHINE", ringing=True, answered=True)),
    "busy": (BEHAVIOURS["busy"], "1003", {},
             dict(outcome="3.12", source="auto", cause=17, dial_status="BUSY", ringing=True, answered=False)),
    "congestion": (BEHAVIOURS["congestion"], "1004", {},
                   dict(outcome="3.16", source="auto", cause=34, dial_status="CONGESTION", answered=False)),
    "no_answer": (BEHAVIOURS["no_answer"], "1005", {"ring_timeout": 16},
                  dict(outcome="3.13", source="auto", cause=19, dial_status="NOANSWER", ringing=True,
                       answered=False)),
    "rejected": (BEHAVIOURS["rejected"], "1006", {},
                 dict(outcome="3.15", source="auto", cause=21, answered=False)),
    "busy_before_answer": (BEHAVIOURS["busy_before_answer"], "1007", {},
                           dict(outcome="3.12", source="auto", cause=17, answered=False)),
    "unallocated": (BEHAVIOURS["unallocated"], "1008", {},
                    dict(outcome="4.31", source="auto", cause=1, answered=False)),
    "hangup_during_amd": (BEHAVIOURS["hangup_during_amd"], "1009", {},
                          dict(outcome="3.20", source="auto", amd="HANGUP", answered=True)),
    "long_call_recorded": (BEHAVIOURS["long_call"], "1010", {"hangup_after": 3, "record": True},
                           dict(outcome=None, source=None, amd="HUMAN", answered=True, cause=16)),
    "silent_notsure": (BEHAVIOURS["silent"], "1011", {"hangup_after": 1},
                       dict(outcome=None, source=None, amd="NOTSURE", answered=True)),
    "interviewer_phone_busy": (BEHAVIOURS["person"], BUSY_PHONE, {},
                               dict(outcome=None, source="system", ringing=False, answered=False, cause=None)),
    "interviewer_phone_unreachable": (BEHAVIOURS["person"], UNREACHABLE_PHONE, {},
                                      dict(outcome=None, source="system", ringing=False, answered=False,
                                           cause=None)),
}


def run_matrix(lab, scratch, client: str, shape: str) -> dict:
    directory, url, factory = scratch
    worker = None
    backend = backend_for(lab, client=client, events=(shape == "in-process"))
    try:
        if shape == "worker":
            worker = Worker(lab, url, directory, client=client)

        def one(item):
            name, (number, ext, opts, _) = item
            opts = {"timeout": 45, **opts}
            return name, run_test_call(backend, factory, number, ext, store_events=(shape == "in-process"), **opts)

        with ThreadPoolExecutor(len(SCENARIOS)) as pool:
            return dict(pool.map(one, SCENARIOS.items()))
    finally:
        backend.close()
        if worker is not None:
            worker.stop()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("client", CLIENTS)
def test_every_behaviour_gets_its_code(lab, scratch, client, shape):
    results = run_matrix(lab, scratch, client, shape)
    _, _, factory = scratch
    wrong = []
    for name, (_, _, _, expected) in SCENARIOS.items():
        r = results[name]
        got = {k: getattr(r, k) for k in expected}
        if got != expected or not r.ended or r.legs_left != 0:
            wrong.append(f"{name}: expected {expected}, ended, 0 legs; got {r.line()} note={r.note}")
    assert not wrong, f"{client}/{shape}:\n" + "\n".join(wrong)

    # The interviewer's phone failing is not the respondent's doing: the dial is not charged to the case.
    with factory() as s:
        for name in ("interviewer_phone_busy", "interviewer_phone_unreachable"):
            attempt = s.scalar(select(CallAttempt).where(CallAttempt.call_id == results[name].call_id))
            assert s.get(Case, attempt.case_id).attempts == 0, name
            assert "interviewer" in (attempt.notes or ""), attempt.notes
    # The ring timeout was honoured: a no-answer is only coded after >= 15 s of ringing.
    with factory() as s:
        a = s.scalar(select(CallAttempt).where(CallAttempt.call_id == results["no_answer"].call_id))
        assert (a.ended_at - a.ringing_at).total_seconds() >= 15

    # The recording is stored on the attempt and holds the conversation (audio flowed both ways).
    rec = results["long_call_recorded"].recording
    assert rec and rec.endswith(f"{results['long_call_recorded'].call_id}.wav"), rec
    path = Path(rec)
    assert path.exists(), rec
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds >= 2.0, f"recording holds {seconds:.1f} s"
