"""The real Asterisk transcripts recorded in the lab (``scripts/record_lab_transcripts.py``,
``tests/telephony/data/lab``): what the tracker makes of them, and that amisim replays them unchanged."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from cati.telephony.ami import AmiCallTracker
from cati.telephony.amisim import LAB_RECORDINGS, AmiSimServer, Script, load_recording
from cati.telephony.base import auto_outcome

from .helpers import fold
from .rawami import RawAmi

SCENARIOS = sorted(p.stem for p in LAB_RECORDINGS.glob("*.json"))


def test_every_scenario_is_recorded():
    assert set(SCENARIOS) >= {
        "person", "person_noamd", "machine", "silent", "busy", "congestion", "no_answer", "rejected",
        "busy_before_answer", "unallocated", "hangup_during_amd", "respondent_hangs_up", "long_call_hangup",
        "cancel_ringing", "recorded", "phone_busy", "phone_unreachable"}


def raw(name):
    return json.loads((LAB_RECORDINGS / f"{name}.json").read_text())


def through_tracker(name, adopt=False):
    """Feed the recording to a tracker registered as AmiBackend.place_call registers the call (``adopt``: to an
    event worker that never saw the Originate and adopts the call from its CATI_CALL_ID)."""
    data = raw(name)
    events = []
    tr = AmiCallTracker(events.append, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    if not adopt:
        tr.register(data["call_id"], interviewer_first=True, amd=data["variables"]["CATI_AMD"] == "1",
                    action_id=data["action_id"])
        tr.placed(data["call_id"])
    for m in data["messages"]:
        msg = {}
        for k, v in m["h"]:
            msg[k] = msg[k] + [v] if isinstance(msg.get(k), list) else [msg[k], v] if k in msg else v
        tr.feed(msg)
    return data, events


def test_recordings_mark_our_hangup_and_end_with_the_last_hangup():
    for name in SCENARIOS:
        data = raw(name)
        heads = [dict(m["h"]) for m in data["messages"]]
        kinds = [h.get("Event") for h in heads]
        assert "OriginateResponse" in kinds, name
        last = max(i for i, k in enumerate(kinds) if k == "Hangup")
        assert all(k == "OriginateResponse" for k in kinds[last + 1:]), name
        assert not {"RTCPSent", "RTCPReceived"} & set(kinds), name
        if data["hangup_sent"] is not None:
            reply = heads[data["hangup_sent"]]
            assert (reply.get("Response"), reply.get("ActionID")) == ("Success", data["hangup_action_id"]), name


# scenario -> (auto outcome, answered, amd status, leg, dial status)
EXPECTED = {
    "person": (None, True, "HUMAN", "respondent", "ANSWER"),
    "person_noamd": (None, True, None, "respondent", "ANSWER"),
    "long_call_hangup": (None, True, "HUMAN", "respondent", "ANSWER"),
    "recorded": (None, True, "HUMAN", "respondent", "ANSWER"),
    "respondent_hangs_up": (None, True, None, "respondent", "ANSWER"),
    "silent": (None, True, "NOTSURE", "respondent", "ANSWER"),
    "machine": ("3.14", True, "MACHINE", "respondent", "ABORT"),  # GOSUB_RESULT=ABORT: DialEnd ABORT
    "hangup_during_amd": ("3.20", True, "HANGUP", "respondent", "ANSWER"),
    "busy": ("3.12", False, None, "respondent", "BUSY"),
    "busy_before_answer": ("3.12", False, None, "respondent", "BUSY"),
    "congestion": ("3.16", False, None, "respondent", "CONGESTION"),
    "no_answer": ("3.13", False, None, "respondent", "NOANSWER"),
    "rejected": ("3.15", False, None, "respondent", "CHANUNAVAIL"),  # DialEnd NOANSWER, then DIALSTATUS
    "unallocated": ("4.31", False, None, "respondent", "CHANUNAVAIL"),
    "cancel_ringing": (None, False, None, "respondent", "CANCEL"),
    "phone_busy": (None, False, None, "interviewer", None),
    "phone_unreachable": (None, False, None, "interviewer", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tracker_gives_each_real_scenario_its_outcome(name):
    data, events = through_tracker(name)
    kinds = [e.kind for e in events]
    assert kinds.count("ended") >= 1 and kinds[-1] == "ended", kinds
    a = fold(events)
    outcome, answered, amd, leg, dial = EXPECTED[name]
    assert auto_outcome(a) == outcome
    assert ("answered_at" in a) == answered
    assert a.get("amd_status") == amd
    assert a.get("leg") == leg
    if dial is not None:
        assert a.get("dial_status") == dial
    if leg == "interviewer":
        assert "placed_at" not in a and "ringing_at" not in a  # the respondent was never dialled
        return
    # The respondent is the leg the originated ;1 half dials, never the interviewer's phone.
    trunk = next(dict(m["h"])["DestUniqueid"] for m in data["messages"]
                 if dict(m["h"]).get("Event") == "DialBegin" and dict(m["h"]).get("Uniqueid") == data["call_id"])
    assert {e.backend_call_id for e in events if e.kind != "placed"} == {trunk}
    if name not in ("congestion", "unallocated"):  # these fail before any ringing
        assert "ringing_at" in a
    if amd in ("HUMAN", "NOTSURE"):
        assert "answered_human" in kinds  # NOTSURE is routed to the interviewer like HUMAN
    if name == "machine":
        assert "answered_machine" in kinds
    if name == "recorded":
        assert events[-1].recording == f"/var/spool/asterisk/monitor/cati/{data['call_id']}.wav"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_worker_adopting_the_call_gives_the_same_outcome(name):
    data, events = through_tracker(name, adopt=True)
    a = fold(events)
    outcome, answered, amd, leg, _dial = EXPECTED[name]
    assert (auto_outcome(a), "answered_at" in a, a.get("amd_status"), a.get("leg")) == (outcome, answered, amd, leg)


def test_no_answer_rang_past_the_fair_limit():
    data, events = through_tracker("no_answer")
    a = fold(events)
    assert (a["ended_at"] - a["ringing_at"]).total_seconds() == pytest.approx(20, abs=0.5)


# ---------------------------------------------------------------------------------------------------
# amisim replays the recordings
# ---------------------------------------------------------------------------------------------------

NUMBER = "8613800009999"

# (scenario expected, script, extension, AMD, record, hang up with an AMI Hangup when)
REPLAYS = [
    ("person", Script("human", talk_s=1e6), "1002", True, False, "bridged"),
    ("person_noamd", Script("human", talk_s=1e6), "1002", False, False, "bridged"),
    ("recorded", Script("human", talk_s=1e6), "1002", True, True, "bridged"),
    ("silent", Script("notsure", talk_s=1e6), "1002", True, False, "bridged"),
    ("machine", Script("machine"), "1002", True, False, None),
    ("busy", Script("busy"), "1002", True, False, None),
    ("no_answer", Script("noanswer"), "1002", True, False, None),
    ("congestion", Script("congestion"), "1002", True, False, None),
    ("rejected", Script("rejected"), "1002", True, False, None),
    ("unallocated", Script("unallocated"), "1002", True, False, None),
    ("busy_before_answer", Script("hangup17"), "1002", True, False, None),
    ("hangup_during_amd", Script("hangup_during_amd"), "1002", True, False, None),
    ("respondent_hangs_up", Script("hangup_during_amd"), "1002", False, False, None),
    ("cancel_ringing", Script("noanswer"), "1002", True, False, "ringing"),
    ("phone_busy", Script("human"), "1099", True, False, None),
    ("phone_unreachable", Script("human"), "1098", True, False, None),
]


def shape(events, call_id):
    """(Event, leg role, key fields) of each event: what must not drift between the lab and amisim."""
    roles = {call_id: ";1", f"{call_id};2": ";2"}
    for m in events:
        if m.get("Event") == "DialBegin" and m.get("Uniqueid") in roles:
            roles[m["DestUniqueid"]] = "phone" if m["Uniqueid"].endswith(";2") else "trunk"
    bridges: dict[str, int] = {}
    out = []
    for m in events:
        ev = m["Event"]
        key = [ev, roles.get(m.get("Uniqueid"), m.get("Uniqueid")), roles.get(m.get("DestUniqueid"))]
        key += [m.get(k) for k in ("ChannelState", "DialStatus", "Cause", "Reason", "Response", "Application",
                                   "Status", "State")]
        if ev == "VarSet":
            shown = ("DIALSTATUS", "AMDSTATUS", "AMDCAUSE", "CATI_AMD", "CATI_RECORD", "CATI_TIMEOUT",
                     "MIXMONITOR_FILENAME")
            key += [m["Variable"], m["Value"].replace(call_id, "<call>") if m["Variable"] in shown else None]
        if "BridgeUniqueid" in m:
            key.append(bridges.setdefault(m["BridgeUniqueid"], len(bridges)))
        out.append(tuple(key))
    return out


def recorded_events(name):
    data = raw(name)
    return data, [dict(m["h"]) for m in data["messages"] if m["h"][0][0] == "Event"]


@pytest.fixture(scope="module")
def sim():
    srv = AmiSimServer(time_scale=0.01)
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("expected, script, ext, amd, record, hangup", REPLAYS, ids=[r[0] for r in REPLAYS])
def test_amisim_replays_the_recording(sim, expected, script, ext, amd, record, hangup):
    data, real = recorded_events(expected)
    if expected == "cancel_ringing":
        # The ringing number's own recording up to the ringing, then the lab's cancel: two real calls never
        # order their first events quite alike, so the head comes from the recording amisim plays.
        head = load_recording("no_answer")
        tail = load_recording("cancel_ringing")
        real = [dict(p) for p in head.events[: head.ring_end]]
        ids = [(head.call, data["call_id"]), (head.trunk, tail.trunk), (head.phone, tail.phone),
               (head.bridges[0], tail.bridges[0])]

        def swap(v):
            for a, b in ids:
                v = v.replace(a, b)
            return v

        real = [{k: swap(v) for k, v in m.items()} for m in real] + [dict(p) for p in tail.events[tail.hangup_at:]]
    sim.set_script(NUMBER, script)
    c = RawAmi(sim.host, sim.port)
    c.login()
    c.read_until(lambda m: m.get("Event") == "SuccessfulAuth")
    call_id = str(uuid.uuid4())
    aid = f"cati-orig-1-{call_id[:8]}"
    c.action("Originate", ActionID=aid, Channel=f"Local/{ext}@cati-interviewer/n", Context="cati-dialout",
             Exten=NUMBER, Priority="1", Async="true", ChannelId=call_id, Timeout="30000",
             Variable=f"CATI_CALL_ID={call_id},CATI_RECORD={int(record)},CATI_AMD={int(amd)},"
                      f"CATI_TIMEOUT={data['variables']['CATI_TIMEOUT']}")
    got: list[dict] = []
    live: set[str] = set()
    origin = None
    deadline = time.monotonic() + 15
    sent_hangup = False
    while time.monotonic() < deadline:
        if hangup and not sent_hangup:
            ready = (any(m.get("Event") == "BridgeEnter" and m.get("Uniqueid") == call_id for m in got)
                     if hangup == "bridged" else
                     any(m.get("Event") == "DialState" and m.get("Uniqueid") == call_id for m in got))
            if ready:
                time.sleep(0.01)  # inside the quiet wait (talk / ringing), as in the lab
                c.action("Hangup", ActionID="hup", Channel=call_id, Cause="16")
                sent_hangup = True
        try:
            m = c.read(timeout=0.02)
        except TimeoutError:
            continue
        if m is None:
            break
        if "Response" in m and "Event" not in m:
            continue
        got.append(m)
        if m["Event"] == "Newchannel":
            live.add(m["Uniqueid"])
        elif m["Event"] == "Hangup":
            live.discard(m["Uniqueid"])
        elif m["Event"] == "OriginateResponse":
            origin = m
        if got and not live and origin is not None and any(g["Event"] == "Hangup" for g in got):
            break
    c.close()
    assert shape(got, call_id) == shape(real, data["call_id"])
    # every recorded id was replaced by this call's own
    blob = b"\n".join(m["_raw"] for m in got)
    rec = load_recording(expected)
    for old in [data["call_id"], *rec.uids, *rec.bridges]:
        assert old.encode() not in blob
    assert NUMBER.encode() in blob or expected.startswith("phone_")
    assert origin["ActionID"] == aid and origin["Uniqueid"] == call_id
    stamps = [float(m["Timestamp"]) for m in got]
    assert stamps == sorted(stamps)
    assert not [ch for ch in sim.live_channels() if ch.linkedid == call_id]


def test_replay_honours_the_scripted_durations(sim):
    """ring_s / amd_s stretch the recorded ringing and machine detection; the ring-out lasts CATI_TIMEOUT.

    Scheduling jitter only lengthens waits (1 ms real = 0.1 s virtual here): the upper bounds leave room for it.
    """
    from cati.telephony.ami import AmiBackend

    from .helpers import Collector

    sim.set_script("8613800001111", Script("human", ring_s=7, amd_s=3, talk_s=1e6))
    sim.set_script("8613800002222", Script("noanswer"))
    b = AmiBackend(sim.host, sim.port, "cati", "good", ping_interval=60)
    col = Collector()
    b.subscribe(col)
    try:
        human, noans = str(uuid.uuid4()), str(uuid.uuid4())
        b.place_call(human, "8613800001111", "1001", machine_detection=True)
        b.place_call(noans, "8613800002222", "1002", machine_detection=True, timeout_s=25)
        col.wait(human, "answered_human", timeout=5)
        a = fold(col.of(human))
        assert 7 <= (a["answered_at"] - a["ringing_at"]).total_seconds() < 12  # recorded: 2 s
        verdict = next(e for e in col.of(human) if e.kind == "answered_human")
        assert 3 <= (verdict.at - a["answered_at"]).total_seconds() < 8  # recorded: 2.1 s
        col.wait(noans, "ended", timeout=5)
        n = fold(col.of(noans))
        assert 25 <= (n["ended_at"] - n["ringing_at"]).total_seconds() < 30  # recorded: 20 s
        assert auto_outcome(n) == "3.13"
        b.hangup(human)
        assert col.wait(human, "ended", timeout=5).hangup_cause == 16
    finally:
        b.close()


def test_hangup_while_amd_listens_ends_every_leg(sim):
    """Not recorded in the lab: amisim ends every live leg; the tracker ends the call, nothing stays up."""
    from cati.telephony.ami import AmiBackend

    from .helpers import Collector

    sim.set_script("8613800003333", Script("human", amd_s=500, talk_s=1e6))
    b = AmiBackend(sim.host, sim.port, "cati", "good", ping_interval=60)
    col = Collector()
    b.subscribe(col)
    try:
        cid = str(uuid.uuid4())
        b.place_call(cid, "8613800003333", "1001", machine_detection=True)
        col.wait(cid, "answered", timeout=5)
        b.hangup(cid)
        end = col.wait(cid, "ended", timeout=5)
        assert end.hangup_cause == 16 and auto_outcome(fold(col.of(cid))) is None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and [c for c in sim.live_channels() if c.linkedid == cid]:
            time.sleep(0.02)
        assert not [c for c in sim.live_channels() if c.linkedid == cid]
        assert "answered_human" not in [e.kind for e in col.of(cid)]  # no verdict was ever given
    finally:
        b.close()


def test_hangup_before_the_interviewer_answers_fails_the_originate(sim_factory):
    """Not recorded either: the interviewer's phone is slow (interviewer_answer_s) and we hang up meanwhile."""
    from cati.telephony.ami import AmiBackend

    from .helpers import Collector

    srv = sim_factory(time_scale=0.01, interviewer_answer_s=300, default=Script("human"))
    b = AmiBackend(srv.host, srv.port, "cati", "good", ping_interval=60)
    col = Collector()
    b.subscribe(col)
    try:
        cid = str(uuid.uuid4())
        b.place_call(cid, "8613800004444", "1001", machine_detection=True)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len([c for c in srv.live_channels() if c.linkedid == cid]) < 3:
            time.sleep(0.01)  # both Local halves and the ringing phone
        b.hangup(cid)
        end = col.wait(cid, "ended", timeout=5)
        a = fold(col.of(cid))
        assert end.leg == "interviewer" and "placed_at" not in a and auto_outcome(a) is None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and srv.live_channels():
            time.sleep(0.02)
        assert srv.live_channels() == []
        orig = [e for e in col.of(cid) if e.originate_reason is not None]
        assert orig and orig[-1].originate_reason == 0  # the OriginateResponse said Failure
    finally:
        b.close()
