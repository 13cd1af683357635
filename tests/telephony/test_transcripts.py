"""Replay the real Asterisk 22.10.1 transcripts through our parser, panoramisk's protocol parser and
the call tracker, and compare the simulator's sequences with them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cati.telephony.ami import AmiCallTracker, parse_ami_stream
from cati.telephony.base import auto_outcome

from .conftest import TRANSCRIPTS, read_raw

T0 = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
RAWS = ["s1_human", "s2_busy", "s3_cong", "s4_noans", "s5_amdh", "s6_h21", "s7_agentfirst",
        "s8_dialout_busy", "s9_noother", "b1_busy", "b2_human", "e_errors", "live", "t3"]


def server_bytes(name):
    return b"".join(data for _, d, data in read_raw(f"{name}_raw.log") if d == "<<")


def full_messages(name):
    path = TRANSCRIPTS / f"{name}_full.txt"
    out = []
    for line in path.read_text().splitlines():
        if not line.startswith("["):
            continue
        body = line.split("] ", 1)[1]
        msg = {}
        for part in body.split(" | "):
            k, _, v = part.partition(": ")
            msg.setdefault(k.strip(), v)
        out.append(msg)
    return out


@pytest.mark.parametrize("name", RAWS)
def test_parser_agrees_with_full_transcript(name):
    parsed = parse_ami_stream(server_bytes(name))
    full = full_messages(name)
    assert len(parsed) >= len(full) > 0
    tail = parsed[len(parsed) - len(full):]
    for mine, theirs in zip(tail, full, strict=True):
        assert (mine.get("Event"), mine.get("Response")) == (theirs.get("Event"), theirs.get("Response"))
        for key in ("Uniqueid", "Linkedid", "Cause", "Reason", "DialStatus", "Variable", "Value", "ActionID"):
            if key in theirs:
                first = mine[key][0] if isinstance(mine[key], list) else mine[key]
                assert first.strip() == theirs[key].strip(), (name, key)


def _panoramisk_messages(chunks):
    from panoramisk.ami_protocol import AMIProtocol

    got = []

    class Factory:
        forgetable_actions = ()
        awaiting_actions = []

        def dispatch(self, m):
            got.append(dict(m.items()))

    p = AMIProtocol()
    p.connection_made(transport=None)
    p.factory = Factory()
    for c in chunks:
        p.data_received(c)
    return [{k: v for k, v in m.items() if k != "content"} for m in got]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_panoramisk_parses_real_bytes_split_anywhere(seed):
    data = server_bytes("s1_human")
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(data)), 40))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    events = [m for m in parse_ami_stream(data) if "Event" in m]
    via_lib = _panoramisk_messages(chunks)
    assert [m["Event"] for m in via_lib] == [m["Event"] for m in events]
    assert [m.get("Uniqueid") for m in via_lib] == [m.get("Uniqueid") for m in events]


def replay(name, call_id, other_id=None, interviewer_first=False):
    """Feed the transcript's server messages to a tracker, with the clock at each chunk's time."""
    events = []
    now = {"t": T0}
    tr = AmiCallTracker(events.append, clock=lambda: now["t"])
    tr.register(call_id, interviewer_first=interviewer_first, other_id=other_id)
    for t, d, data in read_raw(f"{name}_raw.log"):
        now["t"] = T0 + timedelta(seconds=t)
        if d == ">>" and b"Action: Originate" in data and call_id.encode() in data and not interviewer_first:
            tr.placed(call_id, now["t"])
        if d == "<<":
            for m in parse_ami_stream(data):
                tr.feed(m)
    return events


def fold(events):
    """First value wins, like the stored attempt (late 'ended' events fill blanks only)."""
    a = {}
    for e in events:
        stamp = {"placed": "placed_at", "ringing": "ringing_at", "ended": "ended_at"}.get(e.kind, "answered_at")
        a.setdefault(stamp, e.at)
        for k in ("hangup_cause", "originate_reason", "dial_status", "amd_status", "amd_cause", "leg"):
            v = getattr(e, k)
            if v is not None and a.get(k) is None:
                a[k] = v
    a["machine_detection"] = a.get("amd_status")
    return a


def secs(a, b):
    return round((b - a).total_seconds(), 3)


def test_s1_human_answered_then_normal_clearing():
    ev = replay("s1_human", "cati-1-a", "cati-1-b")
    kinds = [e.kind for e in ev]
    assert kinds[:2] == ["placed", "answered"] and kinds.count("ended") >= 1
    a = fold(ev)
    assert a["hangup_cause"] == 16
    assert secs(a["answered_at"], a["ended_at"]) == pytest.approx(2.505, abs=0.01)
    assert auto_outcome(a) is None  # a person answered: the interviewer codes it


def test_s2_busy_cause_on_leg_2_and_reason_5():
    a = fold(replay("s2_busy", "cati-2-a", "cati-2-b"))
    assert (a["hangup_cause"], a["originate_reason"], a["dial_status"]) == (17, 5, "BUSY")
    assert "answered_at" not in a
    assert auto_outcome(a) == "3.12"


def test_s3_congestion():
    a = fold(replay("s3_cong", "cati-3-a", "cati-3-b"))
    assert (a["hangup_cause"], a["originate_reason"]) == (34, 8)
    assert auto_outcome(a) == "3.16"


def test_s4_no_answer_without_dialend_and_5s_is_too_short():
    ev = replay("s4_noans", "cati-4-a", "cati-4-b")
    a = fold(ev)
    assert (a["hangup_cause"], a["originate_reason"], a.get("dial_status")) == (19, 3, None)
    assert secs(a["ringing_at"], a["ended_at"]) == pytest.approx(5.006, abs=0.01)
    assert auto_outcome(a) is None  # 5 s of ringing is not a fair no-answer (needs >= 15 s)
    assert auto_outcome(dict(a, ended_at=a["ringing_at"] + timedelta(seconds=20))) == "3.13"


def test_s5_amd_human_seconds_after_answer():
    ev = replay("s5_amdh", "cati-5-a", "cati-5-b")
    kinds = [e.kind for e in ev]
    assert kinds.index("answered") < kinds.index("answered_human")
    human = next(e for e in ev if e.kind == "answered_human")
    assert (human.amd_status, human.amd_cause) == ("HUMAN", "HUMAN-800-800")
    a = fold(ev)
    assert secs(a["answered_at"], human.at) == pytest.approx(2.182, abs=0.01)
    assert auto_outcome(a) is None


def test_s6_rejected_reason_0_cause_21():
    a = fold(replay("s6_h21", "cati-6-a", "cati-6-b"))
    assert (a["hangup_cause"], a["originate_reason"]) == (21, 0)
    assert auto_outcome(a) == "3.15"


def test_s8_interviewer_first_busy_is_seen_on_the_dialled_leg():
    ev = replay("s8_dialout_busy", "cati-9-a", "cati-9-b", interviewer_first=True)
    a = fold(ev)
    assert ev[0].kind == "placed" and ev[0].backend_call_id == "1795367072.22"
    assert (a["hangup_cause"], a["dial_status"], a.get("originate_reason")) == (17, "BUSY", None)
    assert auto_outcome(a) == "3.12"


def test_s9_without_other_channel_id():
    a = fold(replay("s9_noother", "cati-10-a"))
    assert a["hangup_cause"] == 16 and "answered_at" in a


def test_b1_blocking_busy_has_no_originate_response():
    a = fold(replay("b1_busy", "cati-b1-a", "cati-b1-b"))
    assert a["hangup_cause"] == 17 and a.get("originate_reason") is None
    assert auto_outcome(a) == "3.12"


@pytest.mark.parametrize("call_id, reason", [("cati-e1-a", 0), ("cati-e2-a", 0)])
def test_e_errors_not_placed(call_id, reason):
    ev = replay("e_errors", call_id, call_id.replace("-a", "-b"))
    a = fold(ev)
    assert a["originate_reason"] == reason and a.get("hangup_cause") is None
    assert auto_outcome(a) == "3.16"
