"""Record real AMI transcripts of interviewer-first calls from the telephone lab.

    PYTHONPATH=. python scripts/record_lab_transcripts.py [--out tests/telephony/data/lab] [--only person,busy]

Starts :class:`cati.telephony.lab.TelephoneLab` (a real Asterisk PBX with our shipped dialplan and a second
Asterisk playing the outside world) in a temporary directory, logs in over a raw socket and, for each scenario,
sends exactly the ``Originate`` that :meth:`cati.telephony.ami.AmiBackend.place_call` sends. Every AMI message
(all headers, in order, with the time it was received) from the Originate until the call's last ``Hangup``
(and the ``OriginateResponse``, whenever it comes) is written to ``<out>/<scenario>.json``. The lab is stopped
at the end (by PID).

These files are the truth :mod:`cati.telephony.amisim` replays and ``tests/telephony/test_lab_recordings.py``
checks the tracker against. Kept compact: RTCP events and the ``RTPAUDIOQOS*`` statistics variables are dropped, the lab's spool directory is written as
Asterisk's default ``/var/spool/asterisk``.

JSON layout::

    {"scenario": ..., "behaviour": ..., "number": "<digits>", "extension": "1001", "call_id": "<uuid>",
     "action_id": "cati-orig-1-xxxxxxxx", "variables": {"CATI_AMD": "1", ...},
     "hangup_sent": <index of the first message received after our Hangup action was sent, or null>,
     "hangup_action_id": ..., "messages": [{"t": <s since the Originate>, "h": [[name, value], ...]}, ...]}
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cati.telephony.lab import BEHAVIOURS, BUSY_PHONE, UNREACHABLE_PHONE, TelephoneLab  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "telephony" / "data" / "lab"
DROP_EVENTS = {"RTCPSent", "RTCPReceived"}
#: The ring timeout we send (CATI_TIMEOUT): no_answer rings this long, enough for AAPOR 3.13 (>= 15 s).
RING_TIMEOUT = 20


@dataclass
class Scenario:
    name: str
    behaviour: str
    extension: str = "1001"
    amd: bool = True
    record: bool = False
    hangup_after: float | None = None  # seconds after the Originate: send Hangup(Channel=<call id>)
    note: str = ""


SCENARIOS = [
    Scenario("person", "person", hangup_after=8.0,
             note="AMD HUMAN, bridged; the lab's person never hangs up (Echo), so we hang up"),
    Scenario("person_noamd", "person", amd=False, hangup_after=5.0, note="no AMD; we hang up"),
    Scenario("machine", "machine", note="AMD MACHINE: GOSUB_RESULT=ABORT ends the Dial"),
    Scenario("silent", "silent", hangup_after=8.0, note="AMD NOTSURE: bridged to the interviewer; we hang up"),
    Scenario("busy", "busy"),
    Scenario("congestion", "congestion"),
    Scenario("no_answer", "no_answer", note=f"rings until CATI_TIMEOUT={RING_TIMEOUT}"),
    Scenario("rejected", "rejected"),
    Scenario("busy_before_answer", "busy_before_answer"),
    Scenario("unallocated", "unallocated"),
    Scenario("hangup_during_amd", "hangup_during_amd", note="the callee hangs up 1 s after answering: AMD HANGUP"),
    Scenario("respondent_hangs_up", "hangup_during_amd", amd=False,
             note="no AMD: bridged, then the respondent hangs up 1 s after answering"),
    Scenario("long_call_hangup", "long_call", hangup_after=7.0,
             note="a person who keeps talking; we hang up while audio flows"),
    Scenario("cancel_ringing", "no_answer", hangup_after=3.0, note="we hang up while the respondent is ringing"),
    Scenario("recorded", "person", record=True, hangup_after=8.0, note="CATI_RECORD=1: MixMonitor in the dialplan"),
    Scenario("phone_busy", "person", extension=BUSY_PHONE, note="the interviewer's phone is busy"),
    Scenario("phone_unreachable", "person", extension=UNREACHABLE_PHONE,
             note="the interviewer's phone is not registered"),
]


class Ami:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        banner = self._line()
        if not banner.startswith("Asterisk Call Manager"):
            raise RuntimeError(f"unexpected banner {banner!r}")

    def _line(self) -> str:
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode()

    def send(self, headers: list[tuple[str, str]]) -> None:
        self.sock.sendall(("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode())

    def read(self, timeout: float) -> list[tuple[str, str]] | None:
        """Next message as ordered (name, value) pairs, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise RuntimeError("AMI closed the connection")
            self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        pairs = []
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            k, sep, v = line.partition(":")
            if sep:
                pairs.append((k, v[1:] if v.startswith(" ") else v))
        return pairs


def _get(pairs, name):
    for k, v in pairs:
        if k == name:
            return v
    return None


def record(ami: Ami, sc: Scenario, spool: str, n: int) -> dict:
    call_id = str(uuid.uuid4())
    number = BEHAVIOURS[sc.behaviour].lstrip("+")
    aid = f"cati-orig-{n}-{call_id[:8]}"
    variables = {"CATI_CALL_ID": call_id, "CATI_RECORD": str(int(sc.record)), "CATI_AMD": str(int(sc.amd)),
                 "CATI_TIMEOUT": str(RING_TIMEOUT)}
    # Exactly AmiBackend.place_call's action (no CallerID: the dialer passes none unless configured).
    action = [("Action", "Originate"), ("ActionID", aid), ("Channel", f"Local/{sc.extension}@cati-interviewer/n"),
              ("Context", "cati-dialout"), ("Exten", number), ("Priority", "1"), ("Async", "true"),
              ("ChannelId", call_id), ("Timeout", "30000")]
    action += [("Variable", f"{k}={v}") for k, v in variables.items()]
    hangup_aid = f"cati-hangup-{n}"
    t0 = time.monotonic()
    ami.send(action)
    messages: list[dict] = []
    live: set[str] = set()
    seen = False
    orig_done = False
    last_hangup = None
    hangup_sent = None
    deadline = t0 + RING_TIMEOUT + 40
    while time.monotonic() < deadline:
        if sc.hangup_after is not None and hangup_sent is None and time.monotonic() - t0 >= sc.hangup_after:
            ami.send([("Action", "Hangup"), ("ActionID", hangup_aid), ("Channel", call_id), ("Cause", "16")])
            hangup_sent = len(messages)
        if seen and not live and orig_done:
            break
        wait = 0.2 if sc.hangup_after is None or hangup_sent is not None else \
            max(0.01, min(0.2, t0 + sc.hangup_after - time.monotonic()))
        pairs = ami.read(wait)
        if pairs is None:
            continue
        t = round(time.monotonic() - t0, 6)
        ev = _get(pairs, "Event")
        if ev in DROP_EVENTS or (ev == "VarSet" and (_get(pairs, "Variable") or "").startswith("RTPAUDIOQOS")):
            continue  # RTCP reports and the RTP statistics variables: noise, and they make the files big
        linked = _get(pairs, "Linkedid") or _get(pairs, "DestLinkedid") or _get(pairs, "LocalOneLinkedid")
        actid = _get(pairs, "ActionID")
        if ev and linked is not None and linked != call_id:
            continue  # another call's event (there is none while we record one at a time)
        if ev and linked is None and actid not in (aid, hangup_aid) and not ev.startswith("Bridge") \
                and ev not in ("DeviceStateChange",):
            continue  # not about this call (e.g. security or system events)
        pairs = [(k, v.replace(spool, "/var/spool/asterisk")) for k, v in pairs]
        messages.append({"t": t, "h": [list(p) for p in pairs]})
        uid = _get(pairs, "Uniqueid")
        if ev == "Newchannel":
            live.add(uid)
            seen = True
        elif ev == "Hangup":
            live.discard(uid)
            last_hangup = len(messages) - 1
        elif ev == "OriginateResponse":
            orig_done = True
    else:
        raise RuntimeError(f"{sc.name}: the call did not end within the deadline (live: {sorted(live)})")
    # Until the last Hangup, plus the OriginateResponse when it came later; nothing after that.
    keep = messages[: last_hangup + 1] + [m for m in messages[last_hangup + 1:]
                                          if _get(m["h"], "Event") == "OriginateResponse"]
    return {"scenario": sc.name, "behaviour": sc.behaviour, "note": sc.note, "number": number,
            "extension": sc.extension, "call_id": call_id, "action_id": aid, "variables": variables,
            "asterisk": "22.10.1", "hangup_sent": hangup_sent, "hangup_action_id": hangup_aid if hangup_sent is not None
            else None, "messages": keep}


def dump(data: dict) -> str:
    """One message a line: readable diffs, compact files."""
    head = {k: v for k, v in data.items() if k != "messages"}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "messages": [']
    msgs = [json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in data["messages"]]
    lines.append(",\n".join(msgs))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args(argv)
    only = {s for s in args.only.split(",") if s}
    todo = [s for s in SCENARIOS if not only or s.name in only]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cati-lab-rec-") as tmp:
        lab = TelephoneLab(tmp).start()
        try:
            pbx = lab.pbxes[0]
            spool = str(Path(pbx.root) / "spool")
            ami = Ami(pbx.ami_port)
            ami.send([("Action", "Login"), ("ActionID", "login"), ("Username", lab.state.username),
                      ("Secret", lab.state.secret)])
            while ami.read(1.0) is not None:  # the reply, FullyBooted, SuccessfulAuth
                pass
            for n, sc in enumerate(todo, start=1):
                data = record(ami, sc, spool, n)
                (args.out / f"{sc.name}.json").write_text(dump(data))
                print(f"{sc.name:22s} {len(data['messages']):4d} messages", flush=True)
                while ami.read(1.0) is not None:  # let stragglers of this call pass before the next
                    pass
        finally:
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
