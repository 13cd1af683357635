"""Every behaviour of the lab's outside world, through the console's dialer path, against a real Asterisk.

Each combination of AMI client (panoramisk, asterisk-ami) and process shape (events stored in process; or an
action-only connection placing calls while a separate ``cati telephony worker`` process stores the events) places
all scenarios at once, each from its own interviewer phone, and checks the attempt the database ends with: the
automatic outcome and its source, the hangup cause, AMD's verdict, whether it rang and was answered, and that no
channel of the call is left up on the PBX 3 s after the end.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from cati.models import Case
from cati.models.calls import CallAttempt
from cati.telephony.lab import run_scenarios, wrong_results

from .conftest import CLIENTS, SHAPES


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("client", CLIENTS)
def test_every_behaviour_gets_its_code(lab, scratch, client, shape):
    directory, url, factory = scratch
    results = run_scenarios(lab, factory, url, directory, client=client, shape=shape)
    wrong = wrong_results(results)
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
