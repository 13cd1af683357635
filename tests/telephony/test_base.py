from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cati.telephony.base import (
    ANSWERED,
    ANSWERED_HUMAN,
    ANSWERED_MACHINE,
    CallEvent,
    EventHub,
    amd_kind,
    auto_outcome,
    hangup_cause_text,
    mask_number,
    normalise_amd_status,
    originate_reason_text,
)

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def att(ring_s=None, answered=False, **kw):
    d = {"placed_at": T0, "ringing_at": T0 + timedelta(seconds=1) if ring_s is not None else None}
    d["ended_at"] = T0 + timedelta(seconds=1 + (ring_s or 0))
    d["answered_at"] = d["ended_at"] if answered else None
    d.update(kw)
    return d


@pytest.mark.parametrize(
    "attempt, expected",
    [
        (att(hangup_cause=17, originate_reason=5), "3.12"),          # real busy (transcript s2)
        (att(hangup_cause=17, originate_reason=0), "3.12"),          # Hangup(17) gives Reason 0, not 5
        (att(hangup_cause=0, originate_reason=5), "3.12"),           # only the Reason knows
        (att(dial_status="BUSY"), "3.12"),                           # interviewer-first: DialEnd BUSY
        (att(ring_s=20, hangup_cause=19, originate_reason=3), "3.13"),
        (att(ring_s=15, hangup_cause=18), "3.13"),                   # exactly 15 s counts
        (att(ring_s=5, hangup_cause=19, originate_reason=3), None),  # 5 s (transcript s4) is too short
        (att(ring_s=30, dial_status="NOANSWER"), "3.13"),
        (att(hangup_cause=21, originate_reason=0, dial_status="NOANSWER"), "3.15"),  # transcript s6
        (att(hangup_cause=34, originate_reason=8), "3.16"),          # congestion (s3)
        (att(hangup_cause=38), "3.16"),
        (att(hangup_cause=41), "3.16"),
        (att(hangup_cause=42), "3.16"),
        (att(originate_reason=8), "3.16"),
        (att(hangup_cause=1), "4.31"),
        (att(hangup_cause=22), "4.32"),
        (att(hangup_cause=28, dial_status="CHANUNAVAIL"), "4.31"),   # cause beats the dial status
        (att(dial_status="CHANUNAVAIL"), "3.16"),
        (att(originate_reason=0), "3.16"),                           # not placed, nobody explains why
        (att(answered=True, machine_detection="MACHINE", hangup_cause=16), "3.14"),
        (att(answered=True, machine_detection="HUMAN", hangup_cause=16), None),
        (att(answered=True, machine_detection="NOTSURE", hangup_cause=16), None),
        (att(answered=True, hangup_cause=16), None),                 # no AMD: the interviewer codes it
        (att(answered=True, amd_status="FAX"), "4.20"),
        (att(leg="interviewer", originate_reason=0), None),          # respondent never dialled
        ({"placed_at": T0, "ended_at": None, "hangup_cause": 17}, None),  # not over yet
    ],
)
def test_auto_outcome_worked_examples(attempt, expected):
    assert auto_outcome(attempt) == expected


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_auto_outcome_reads_attributes_too():
    assert auto_outcome(Obj(**att(hangup_cause=17))) == "3.12"


causes = st.one_of(st.none(), st.sampled_from([0, 1, 16, 17, 18, 19, 21, 22, 28, 34, 38, 41, 42, 127]))
reasons = st.one_of(st.none(), st.sampled_from([0, 1, 3, 4, 5, 8]))
dials = st.one_of(st.none(), st.sampled_from(["BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL", "CANCEL"]))


@given(cause=causes, reason=reasons, dial=dials, ring=st.floats(0, 120))
def test_human_answer_is_never_auto_coded(cause, reason, dial, ring):
    a = att(ring_s=ring, answered=True, machine_detection="HUMAN", hangup_cause=cause,
            originate_reason=reason, dial_status=dial)
    assert auto_outcome(a) is None


@given(cause=causes, reason=reasons, dial=dials, ring=st.floats(0, 14.99))
def test_short_ring_never_gives_no_answer(cause, reason, dial, ring):
    assert auto_outcome(att(ring_s=ring, hangup_cause=cause, originate_reason=reason, dial_status=dial)) != "3.13"


@given(cause=causes, reason=reasons, dial=dials, ring=st.floats(0, 120))
def test_codes_are_aapor_attempt_codes(cause, reason, dial, ring):
    code = auto_outcome(att(ring_s=ring, hangup_cause=cause, originate_reason=reason, dial_status=dial))
    assert code in (None, "3.12", "3.13", "3.15", "3.16", "4.31", "4.32")


def test_amd_mapping():
    assert amd_kind("HUMAN") == ANSWERED_HUMAN
    assert amd_kind("NOTSURE") == ANSWERED_HUMAN
    assert amd_kind("MACHINE") == ANSWERED_MACHINE
    assert amd_kind(None) == ANSWERED
    assert normalise_amd_status("machine_end_beep") == "MACHINE"
    assert normalise_amd_status("fax") == "FAX"
    with pytest.raises(ValueError, match="unknown"):
        amd_kind("BANANA")


def test_texts_and_mask():
    assert hangup_cause_text(17) == "User busy"
    assert hangup_cause_text(21) == "Call Rejected"
    assert originate_reason_text(0).startswith("not placed")
    assert mask_number("13812341234") == "138****1234"
    assert mask_number("+8613812341234") == "861******1234"


def test_event_validation_and_hub_survives_raising_subscriber():
    with pytest.raises(ValueError, match="kind"):
        CallEvent("x", "exploded", T0)
    with pytest.raises(ValueError, match="UTC"):
        CallEvent("x", "placed", datetime(2026, 1, 1))
    hub = EventHub()
    seen = []

    def bad(ev):
        raise RuntimeError("subscriber bug")

    hub.subscribe(bad)
    hub.subscribe(seen.append)
    hub.emit(CallEvent("x", "placed", T0))
    assert [e.kind for e in seen] == ["placed"]
    assert [e.kind for e in hub.events()] == ["placed"]


def test_hub_backlog_is_bounded():
    small = type("Small", (EventHub,), {"BACKLOG": 5})()  # the default keeps 10 000
    seen = []
    small.subscribe(seen.append)
    for i in range(12):
        small.emit(CallEvent(f"c{i}", "placed", T0))
    assert [e.call_id for e in small.events()] == ["c7", "c8", "c9", "c10", "c11"]  # oldest dropped
    assert len(seen) == 12  # subscribers still get every event


def test_one_monitoring_session_per_call_across_supervisors():
    """Listen, whisper and barge exclude each other on a call: a second supervisor is refused (MonitorBusy names
    the first); the first may switch mode; once they stop the call is free."""
    from cati.telephony.base import MonitorBusy
    from cati.telephony.simulated import SimulatedBackend

    b = SimulatedBackend(mix={"human": 1.0})
    try:
        b.place_call("c1", "+8613900000001", "1001")
        b.monitor("c1", "9001", "listen")
        with pytest.raises(MonitorBusy) as err:
            b.monitor("c1", "9002", "barge")
        assert (err.value.supervisor_extension, err.value.mode) == ("9001", "listen")
        b.monitor("c1", "9001", "whisper")
        assert [(m["supervisor_extension"], m["mode"]) for m in b.monitors()] == [("9001", "whisper")]
        assert b.stop_monitor("9001") == 1
        b.monitor("c1", "9002", "barge")
        assert [(m["supervisor_extension"], m["mode"]) for m in b.monitors()] == [("9002", "barge")]
    finally:
        b.close()
