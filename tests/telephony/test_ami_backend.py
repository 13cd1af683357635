"""Contract tests: both AMI client adapters against the AMI simulator over real TCP, faults included."""

from __future__ import annotations

import logging
import socket
import time
import uuid

import pytest

from cati.telephony.ami import AmiBackend
from cati.telephony.amisim import Script
from cati.telephony.base import TelephonyError, auto_outcome

from .helpers import Collector, fold

CLIENTS = ["panoramisk", "asterisk-ami"]

SCRIPTS = {
    "13800000001": Script("human", ring_s=4, amd_s=2.5, talk_s=20),
    "13800000002": Script("machine", ring_s=6, amd_s=3),
    "13800000003": "busy",
    "13800000004": "noanswer",
    "13800000005": "congestion",
    "13800000006": "rejected",
    "13800000007": "unallocated",
    "13800000008": "hangup_during_amd",
    "13800000009": Script("notsure", ring_s=3),
    "13800000010": Script("human", ring_s=1, amd_s=1, talk_s=10_000),
    "13800000011": "hangup17",
}


@pytest.fixture(params=CLIENTS)
def client(request):
    return request.param


@pytest.fixture
def sim(sim_factory):
    return sim_factory(scripts=SCRIPTS, time_scale=0.01)


def backend_for(sim, client, **kw):
    kw.setdefault("ping_interval", 60)
    kw.setdefault("backoff", (0.1, 0.5))
    return AmiBackend(sim.host, sim.port, "cati", "good", client=client, **kw)


@pytest.fixture
def backend(sim, client):
    b = backend_for(sim, client)
    col = Collector()
    b.subscribe(col)
    b.col = col
    yield b
    b.close()


def new_id():
    return str(uuid.uuid4())


EXPECTED = [
    # number, auto outcome, answered?, amd status, cause, dial status
    ("13800000001", None, True, "HUMAN", 16, "ANSWER"),
    ("13800000002", "3.14", True, "MACHINE", 16, "ABORT"),  # the lab: GOSUB_RESULT=ABORT ends Dial with ABORT
    ("13800000003", "3.12", False, None, 17, "BUSY"),
    ("13800000004", "3.13", False, None, 19, "NOANSWER"),
    ("13800000005", "3.16", False, None, 34, "CONGESTION"),
    # the lab: a callee rejecting (21) or unallocated (1) gives DialEnd NOANSWER, then Dial's DIALSTATUS
    # CHANUNAVAIL, which is what the attempt keeps
    ("13800000006", "3.15", False, None, 21, "CHANUNAVAIL"),
    ("13800000007", "4.31", False, None, 1, "CHANUNAVAIL"),
    ("13800000008", "3.20", True, "HANGUP", 16, "ANSWER"),  # hung up while AMD listened
    ("13800000011", "3.12", False, None, 17, "BUSY"),       # Hangup(17) while ringing
    ("13800000009", None, True, "NOTSURE", 16, "ANSWER"),
]


def test_every_scripted_outcome_gives_the_right_attempt(backend, sim):
    ids = {}
    for number, *_ in EXPECTED:
        cid = new_id()
        ids[number] = cid
        backend.place_call(cid, number, "1001", caller_id='"Survey" <4001234567>', machine_detection=True,
                           timeout_s=30)
    for number, outcome, answered, amd, cause, dial in EXPECTED:
        cid = ids[number]
        backend.col.wait(cid, "ended", timeout=15)
        a = fold(backend.col.of(cid))
        assert ("answered_at" in a) == answered, number
        assert a.get("amd_status") == amd, number
        assert a.get("hangup_cause") == cause, number
        assert a.get("dial_status") == dial, number
        assert auto_outcome(a) == outcome, number
    # timings (virtual seconds carried in Timestamp headers, compressed 100x in real time)
    human = fold(backend.col.of(ids["13800000001"]))
    # sleeps never end early, scheduling jitter only adds (1 ms real = 0.1 s virtual)
    assert 4 <= (human["answered_at"] - human["ringing_at"]).total_seconds() < 10
    na = fold(backend.col.of(ids["13800000004"]))
    assert 30 <= (na["ended_at"] - na["ringing_at"]).total_seconds() < 40
    kinds = [e.kind for e in backend.col.of(ids["13800000002"])]
    assert kinds[:4] == ["placed", "ringing", "answered", "answered_machine"]
    # the Originate carried our id and the dialplan variables
    orig = [a for a in sim.actions if a.get("action", "").lower() == "originate"]
    assert {a["channelid"] for a in orig} == set(ids.values())
    assert all(a["channel"] == "Local/1001@cati-interviewer/n" and a["context"] == "cati-dialout" for a in orig)
    assert "CATI_AMD=1" in orig[0]["variables"] and "CATI_TIMEOUT=30" in orig[0]["variables"]


def test_hangup_recording_and_supervisor_modes(backend, sim):
    cid = new_id()
    backend.place_call(cid, "13800000010", "1002", record=True)
    backend.col.wait(cid, "answered", timeout=5)
    backend.start_recording(cid, f"{cid}.wav")
    spies = [backend.listen(cid, "9001"), backend.whisper(cid, "9002"), backend.barge(cid, "9003")]
    assert len(set(spies)) == 3
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(1 for s in sim.spies if s["active"]) < 3:
        time.sleep(0.02)
    assert sorted((s["mode"], s["options"]) for s in sim.spies) == [
        ("barge", "qBE"), ("listen", "qE"), ("whisper", "qwE")]
    assert all(s["spyee"].name.endswith(";2") and s["spyee"].linkedid == cid for s in sim.spies)
    backend.stop_recording(cid)
    with pytest.raises(TelephonyError, match="StopMixMonitor"):
        backend.stop_recording(cid)  # nothing left to stop
    backend.hangup(cid)
    end = backend.col.wait(cid, "ended", timeout=5)
    assert end.hangup_cause == 16
    backend.hangup(cid)  # twice is harmless
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and sim.live_channels():
        time.sleep(0.02)
    assert sim.live_channels() == []  # spies left with the call


@pytest.mark.parametrize("extension, text", [("1099", "interviewer phone BUSY"),
                                             ("1098", "interviewer phone CHANUNAVAIL")])  # the lab's busy / offline phone
def test_interviewer_phone_failure_is_not_charged_to_the_case(backend, sim, extension, text):
    cid = new_id()
    backend.place_call(cid, "13800000001", extension, machine_detection=True)
    end = backend.col.wait(cid, "ended", timeout=5)
    a = fold(backend.col.of(cid))
    assert a["leg"] == "interviewer" and "placed_at" not in a and "ringing_at" not in a
    assert auto_outcome(a) is None
    assert end.cause_text.startswith(text)


def test_hangup_while_ringing_is_a_cancel_not_an_outcome(backend, sim):
    cid = new_id()
    backend.place_call(cid, "13800000004", "1001")
    backend.col.wait(cid, "ringing", timeout=5)
    backend.hangup(cid)
    a = fold(backend.col.of(cid))
    backend.col.wait(cid, "ended", timeout=5)
    a = fold(backend.col.of(cid))
    assert a["dial_status"] == "CANCEL"
    assert auto_outcome(a) is None  # rang < 15 s and we cancelled: nothing to conclude


def test_raising_subscriber_does_not_kill_the_connection(backend, sim, caplog):
    def bad(ev):
        raise RuntimeError("consumer bug")

    backend.subscribe(bad)
    with caplog.at_level(logging.ERROR):
        a, b = new_id(), new_id()
        backend.place_call(a, "13800000003", "1001")
        backend.col.wait(a, "ended", timeout=5)
        backend.place_call(b, "13800000005", "1001")
        assert backend.col.wait(b, "ended", timeout=5).hangup_cause == 34
    assert "consumer bug" in caplog.text
    assert backend.reconnects == 0


def test_idle_longer_than_asterisk_ami_socket_timeout(sim, client):
    # action_timeout=3 is what asterisk-ami would also use as its socket timeout without our guard
    b = backend_for(sim, client, action_timeout=3)
    col = Collector()
    b.subscribe(col)
    try:
        time.sleep(3.2)
        cid = new_id()
        b.place_call(cid, "13800000003", "1001")
        assert col.wait(cid, "ended", timeout=5).hangup_cause == 17
        assert b.ping()["ping"] == "Pong" and b.reconnects == 0
    finally:
        b.close()


def test_the_asterisk_ami_fault_we_guard_against_is_real(sim):
    from asterisk.ami import AMIClient

    raw = AMIClient(address=sim.host, port=sim.port)  # library defaults: 3 s socket timeout
    assert not raw.login("cati", "good").response.is_error()
    time.sleep(3.2)
    assert not raw._thread.is_alive()  # the reader thread died on socket.timeout; nobody was told
    assert not raw.finished.is_set()   # ... and the client still looks connected
    raw._socket.close()


def test_split_packets_and_chanvariable_headers(sim_factory, client):
    sim = sim_factory(scripts=SCRIPTS, time_scale=0.01, split_packets=True,
                      chan_variables={"CATI_CALL_ID": "x", "CATI_RECORD": "0"})
    b = backend_for(sim, client)
    col = Collector()
    b.subscribe(col)
    try:
        ids = [new_id() for _ in range(3)]
        for cid, number in zip(ids, ["13800000001", "13800000003", "13800000006"], strict=True):
            b.place_call(cid, number, "1001", machine_detection=True)
        for cid, code in zip(ids, [None, "3.12", "3.15"], strict=True):
            col.wait(cid, "ended", timeout=15)
            assert auto_outcome(fold(col.of(cid))) == code
    finally:
        b.close()


def test_dropped_connection_reconnects_and_reconciles(sim, client):
    b = backend_for(sim, client)
    col = Collector()
    b.subscribe(col)
    try:
        survivor, lost = new_id(), new_id()
        b.place_call(survivor, "13800000010", "1001")
        b.place_call(lost, "13800000010", "1002")
        col.wait(survivor, "answered", timeout=5)
        col.wait(lost, "answered", timeout=5)
        sim.refuse_connections(0.5)
        sim.drop_connections()
        time.sleep(0.1)
        sim.hangup(lost)  # ends while we cannot see it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b.reconnects < 1:
            time.sleep(0.05)
        assert b.reconnects == 1
        end = col.wait(lost, "ended", timeout=5)
        assert end.cause_text.startswith("call lost while the AMI connection was down")
        assert auto_outcome(fold(col.of(lost))) is None  # it was answered: the interviewer codes it
        assert not [e for e in col.of(survivor) if e.kind == "ended"]
        b.hangup(survivor)  # events flow again on the new connection
        assert col.wait(survivor, "ended", timeout=5).hangup_cause == 16
    finally:
        b.close()


def test_ringing_call_lost_in_reconnect_ends_as_technical(sim, client):
    b = backend_for(sim, client)
    col = Collector()
    b.subscribe(col)
    try:
        cid = new_id()
        b.place_call(cid, "13800000004", "1001", timeout_s=600)
        col.wait(cid, "ringing", timeout=5)
        sim.refuse_connections(0.4)
        sim.drop_connections()
        time.sleep(0.1)
        sim.hangup(cid)
        end = col.wait(cid, "ended", timeout=10)
        assert auto_outcome(fold(col.of(cid))) == "3.16"  # no attempt stays "ringing" forever
        assert "lost" in end.cause_text
    finally:
        b.close()


def test_keepalive_pings(sim, client):
    b = backend_for(sim, client, ping_interval=0.1)
    try:
        time.sleep(0.5)
        pings = [a for a in sim.actions if a.get("action", "").lower() == "ping"]
        assert len(pings) >= 3
    finally:
        b.close()


def test_bad_credentials_and_unreachable(sim, client):
    t0 = time.monotonic()
    with pytest.raises(TelephonyError, match="refused the credentials"):
        AmiBackend(sim.host, sim.port, "cati", "wrong", client=client)
    assert time.monotonic() - t0 < 5
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(TelephonyError, match="unreachable"):
        AmiBackend("127.0.0.1", port, "cati", "good", client=client)


def test_invalid_number_is_rejected_before_dialing(backend):
    with pytest.raises(ValueError, match="not digits"):
        backend.place_call(new_id(), "138-0000-0001", "1001")


@pytest.mark.parametrize("raises", [True, False])
def test_the_panoramisk_fault_we_guard_against_is_real(sim, raises):
    """Unguarded, a callback that raises inside panoramisk's data_received closes the connection."""
    import asyncio

    from panoramisk import Manager

    lost = []

    async def go():
        m = Manager(loop=asyncio.get_running_loop(), host=sim.host, port=sim.port, username="cati", secret="good",
                    ping_delay=1000, reconnect_timeout=1000)
        m.on_disconnect = lambda manager, exc: lost.append(exc)

        def bad(manager, event):
            if raises:
                raise RuntimeError("consumer bug")

        m.register_event("*", bad)
        await m.connect()
        for _ in range(50):  # FullyBooted arrives after login and hits the raising callback
            if lost:
                break
            await asyncio.sleep(0.02)
        dropped = list(lost)
        m.close()
        return dropped

    dropped = asyncio.run(go())
    assert bool(dropped) == raises  # the control run (no exception) keeps its connection
