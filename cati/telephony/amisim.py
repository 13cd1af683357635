"""A fast in-process Asterisk Manager Interface (AMI) server for unit tests and manual trials.

Over 600 lines on purpose: a whole AMI server (protocol, channels, dialplan behaviours, replayed
recordings) that has to stay self-consistent; it is test equipment, not product code.

The real thing is the telephone lab (:mod:`cati.telephony.lab`: Asterisk 22.10.1 with our dialplan and an
outside world over PJSIP). This server exists because it is fast, runs without an Asterisk build, and can be
made to misbehave on purpose. It is kept honest by construction:

**Interviewer-first calls (what :class:`cati.telephony.ami.AmiBackend` places) are replayed from lab
recordings.** ``scripts/record_lab_transcripts.py`` records, with exactly the backend's Originate, every AMI
message of each scenario into ``tests/telephony/data/lab/<scenario>.json``. A call here replays one of them
(:meth:`AmiSimServer.scenario_for`: ``human`` → ``person``, ``machine``, ``notsure`` → ``silent``, ``busy``,
``noanswer`` → ``no_answer``, ``congestion``, ``rejected``, ``unallocated``, ``hangup17`` →
``busy_before_answer``, ``hangup_during_amd``; the interviewer's extension 1099 → ``phone_busy``, 1098 →
``phone_unreachable``; ``CATI_RECORD=1`` → ``recorded`` or the MixMonitor part of it spliced in; no AMD →
``person_noamd`` / ``respondent_hangs_up``) event by event, with this call's ids substituted (call id,
``<id>;2``, the auto Uniqueids of the PJSIP legs, channel sequence numbers, bridge ids, the extension, the
dialled number, the ActionID, the ``MIXMONITOR_FILENAME`` path, the ``CATI_*`` values and the Dial's timeout),
``Timestamp`` rebased to the virtual clock, and the recorded gaps scaled by ``time_scale``. ``Script.ring_s``,
``Script.amd_s``, ``CATI_TIMEOUT`` (a ring-out) and ``interviewer_answer_s`` only stretch the recorded waits.
An answered call is bridged until an AMI ``Hangup`` (the recording's own tail after our Hangup action),
``talk_s`` or :meth:`AmiSimServer.hangup` (the ``respondent_hangs_up`` tail, the cause substituted when given).
A Hangup while the respondent rings plays the ``cancel_ringing`` tail (a network hang-up then: the
``busy_before_answer`` tail). Not recorded, and therefore synthetic: a hang-up while the interviewer's phone
answers or while AMD listens (every live leg is hung up), the ``notplaced`` outcome (refused: there is no lab
recording of it), a CallerID on the Originate (the recordings have none; ``<unknown>`` stays), AMD-off
failures (the AMD-on recording with the Dial's AppData rewritten; the ``;1`` leg's priorities stay).
``tests/telephony/test_lab_recordings.py`` checks that each replay gives the recording's sequence of events.

**Respondent-first calls** (``Channel: Local/<number>@cati-respondent`` or ``@resp``, the transcripts' s1–s6)
stay synthetic: their sequences are modelled on, and checked against, the real Asterisk 22.10.1 transcripts of
``../shared/asterisk-ami`` (``tests/telephony/test_amisim.py``). So is an Originate with ``Application``
(the supervisor's ChanSpy leg).

Protocol-level behaviour, for every call:

* banner ``Asterisk Call Manager/11.0.0`` (the AMI version), CRLF framing, LF-only input accepted,
  header names case-insensitive, ``ActionID`` echoed second, no ActionID line when none was sent;
  ``Timestamp`` after ``Privilege`` (``timestampevents = yes``);
* ``Login``: success followed by unsolicited ``FullyBooted`` and ``SuccessfulAuth``; bad credentials
  answered after 1 s (scaled) with ``Authentication failed`` and the socket closed; actions before
  login get ``Permission denied``; unauthenticated sockets closed after ``authtimeout``;
* ``Originate`` async (always "successfully queued", the outcome in ``OriginateResponse``) and
  blocking (no OriginateResponse, the session frozen - replies and events held - until resolved);
  duplicate ChannelId → Reason 0 with no events;
* ``Hangup`` (by name or Uniqueid), ``ChanSpy`` via Originate Application (q, qw, qB + E),
  ``MixMonitor``/``StopMixMonitor``, ``CoreShowChannels``, ``Ping``, ``Logoff``, ``Command``;
* faults: messages split across packets and coalesced, idle periods, dropped connections,
  extra ``ChanVariable`` headers, frozen sessions.

Time can be compressed: ``time_scale=0.01`` makes a 20 s ring last 0.2 s while the ``Timestamp``
header carries virtual seconds, so a client that trusts Timestamp sees true durations.

Run ``python -m cati.telephony.amisim --port 5038`` for manual trials.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CRLF = "\r\n"
BANNER = "Asterisk Call Manager/11.0.0\r\n"

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}

#: Scripted respondent outcomes understood by the simulator.
OUTCOMES = (
    "human", "machine", "notsure", "busy", "noanswer", "congestion", "rejected",
    "unallocated", "notplaced", "hangup17", "hangup_during_amd",
)

CAUSE_TEXT = {0: "Unknown", 1: "Unallocated (unassigned) number", 16: "Normal Clearing", 17: "User busy",
              19: "User alerting, no answer", 21: "Call Rejected", 34: "Circuit/channel congestion"}


@dataclass
class Script:
    """What happens when a number is dialled (virtual seconds; ``None``: as recorded in the lab).

    Interviewer-first calls replay a lab recording (:meth:`AmiSimServer.scenario_for`); ``ring_s`` and ``amd_s``
    only stretch its ringing and its machine detection. Respondent-first calls use 2.0 s and 2.2 s by default.
    """

    outcome: str = "human"
    ring_s: float | None = None  # ringing before answer (or before a busy/rejection that follows ringing)
    amd_s: float | None = None   # AMD analysis time after answer
    talk_s: float = 60.0         # how long an answered respondent stays before hanging up
    amd_cause: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"amisim: unknown outcome {self.outcome!r}; expected one of {OUTCOMES}")


def _fmt(pairs) -> bytes:
    out = []
    for k, v in pairs:
        out.append(f"{k}: {v}")
    return (CRLF.join(out) + CRLF + CRLF).encode()


@dataclass
class Chan:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: int = 0
    priority: int = 1
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    app: str = "AppDial2"
    appdata: str = "(Outgoing Line)"
    bridge: str = ""
    created: float = field(default_factory=time.monotonic)
    hangup_requested: asyncio.Event | None = None
    hangup_cause: int | None = None
    mixmonitor: str | None = None
    call: Call | None = None

    def block(self, prefix: str = "") -> list[tuple[str, str]]:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.cid_num),
            (f"{prefix}CallerIDName", self.cid_name),
            (f"{prefix}ConnectedLineNum", self.conn_num),
            (f"{prefix}ConnectedLineName", self.conn_name),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


class Call:
    """One originated call and its channels; hangup requests interrupt its script."""

    def __init__(self, linkedid: str) -> None:
        self.linkedid = linkedid
        self.hangup = asyncio.Event()
        self.hangup_cause: int | None = 16
        self.hangup_by = "action"      # "action" (an AMI Hangup) or "network" (the respondent hangs up)
        self.scenario: str | None = None  # the lab recording replayed (interviewer-first)
        self.chans: list[Chan] = []


class Session:
    def __init__(self, server: AmiSimServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.events_on = True
        self.frozen = False
        self.held: list[bytes] = []
        self.closed = False
        self.id = next(server._session_ids)
        self.lock = asyncio.Lock()  # whole messages only: never interleave two writers' pieces

    async def write(self, data: bytes, *, force: bool = False) -> None:
        if self.closed:
            return
        if self.frozen and not force:
            self.held.append(data)
            return
        try:
            async with self.lock:
                if self.server.split_packets:
                    await self._write_split(data)
                else:
                    self.writer.write(data)
                    await self.writer.drain()
        except (ConnectionError, RuntimeError):
            self.closed = True

    async def _write_split(self, data: bytes) -> None:
        # Fault: cut the bytes at random places (also inside "\r\n\r\n") with tiny gaps between.
        rnd = self.server._rnd
        pos = 0
        while pos < len(data):
            n = rnd.randint(1, 17)
            self.writer.write(data[pos : pos + n])
            await self.writer.drain()
            pos += n
            if rnd.random() < 0.05:
                await asyncio.sleep(0.001)

    async def unfreeze(self) -> None:
        self.frozen = False
        held, self.held = self.held, []
        if held:
            await self.write(b"".join(held))

    def close(self) -> None:
        self.closed = True
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass


class AmiSimServer:
    """Threaded AMI simulator.

    Parameters
    ----------
    username, secret : the one AMI user accepted.
    scripts : number → :class:`Script` or outcome name; ``default`` applies to others.
    time_scale : real seconds per virtual second (0.01 → 100× faster).
    split_packets : fault - send every message in random small pieces.
    chan_variables : fault/feature - add ``ChanVariable: NAME=value`` headers to channel events.
    authtimeout : virtual seconds an unauthenticated socket may stay open.
    interviewer_answer_s : virtual seconds before the interviewer leg answers.
    recordings_dir : the lab recordings replayed by interviewer-first calls (default :data:`LAB_RECORDINGS`).
    """

    def __init__(
        self,
        username: str = "cati",
        secret: str = "good",
        scripts: dict[str, Script | str] | None = None,
        default: Script | str = "human",
        time_scale: float = 1.0,
        split_packets: bool = False,
        chan_variables: dict[str, str] | None = None,
        authtimeout: float = 30.0,
        interviewer_answer_s: float = 0.0,
        seed: int = 0,
        recordings_dir: Path | str | None = None,
    ) -> None:
        self.username = username
        self.secret = secret
        self.scripts = {k: self._script(v) for k, v in (scripts or {}).items()}
        self.default = self._script(default)
        self.time_scale = time_scale
        self.split_packets = split_packets
        self.chan_variables = dict(chan_variables or {})
        self.authtimeout = authtimeout
        self.interviewer_answer_s = interviewer_answer_s
        self.recordings_dir = recordings_dir
        self._rnd = random.Random(seed)
        self._session_ids = itertools.count(1)
        self._chan_seq = itertools.count(0)
        self._local_seq = itertools.count(0)
        self._uid_seq = itertools.count(2)
        self._epoch0 = time.time()
        self._mono0 = time.monotonic()
        self.sessions: list[Session] = []
        self.channels: dict[str, Chan] = {}      # uniqueid -> chan
        self.calls: dict[str, Call] = {}
        self.spies: list[dict] = []              # ChanSpy records (mode, spyer, spyee)
        self.actions: list[dict] = []            # every action received (for assertions)
        self.event_write_times: dict[str, float] = {}   # "<linkedid>:<kind>" -> time.time() written
        self.on_event_written: Callable[[dict, float], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._refuse_until = 0.0
        self.host = "127.0.0.1"
        self.port = 0

    @staticmethod
    def _script(v: Script | str) -> Script:
        return v if isinstance(v, Script) else Script(outcome=v)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self.host = host
        self._thread = threading.Thread(target=self._run, args=(host, port), name="amisim", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("amisim did not start")
        return self.host, self.port

    def _run(self, host: str, port: int) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            self._server = await asyncio.start_server(self._handle, host, port)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(boot())
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def stop(self) -> None:
        if not self._loop:
            return

        async def shutdown() -> None:
            if self._server:
                self._server.close()
            for s in list(self.sessions):
                s.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        fut = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        try:
            fut.result(5)
        except Exception:  # noqa: BLE001
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        self._loop = None

    def call_in_loop(self, fn: Callable[[], object]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn)

    def drop_connections(self) -> None:
        """Fault: abort every client TCP connection (calls in progress carry on, as in Asterisk)."""

        def drop() -> None:
            for s in list(self.sessions):
                s.closed = True
                try:
                    s.writer.transport.abort()
                except Exception:  # noqa: BLE001
                    pass
            self.sessions.clear()

        self.call_in_loop(drop)

    def refuse_connections(self, seconds: float) -> None:
        """Fault: close new TCP connections at once for ``seconds`` (real) - Asterisk restarting."""
        self._refuse_until = time.monotonic() + seconds

    def hangup(self, ref: str, cause: int | None = None) -> None:
        """Hang up a live call from the "network" side (the respondent hangs up; ``None``: the recorded cause)."""

        def do() -> None:
            chan = self._find_chan(ref)
            if chan is not None and chan.call is not None and not chan.call.hangup.is_set():
                chan.call.hangup_cause = cause if cause is not None or chan.call.scenario else 16
                chan.call.hangup_by = "network"
                chan.call.hangup.set()

        self.call_in_loop(do)

    def set_script(self, number: str, script: Script | str) -> None:
        self.scripts[number] = self._script(script)

    def live_channels(self) -> list[Chan]:
        return list(self.channels.values())

    # -- time ---------------------------------------------------------------------------------------
    def vnow(self) -> float:
        """Virtual epoch seconds."""
        return self._epoch0 + (time.monotonic() - self._mono0) / self.time_scale

    async def vsleep(self, seconds: float, interrupt: asyncio.Event | None = None) -> bool:
        """Sleep virtual seconds; True if interrupted by ``interrupt``."""
        real = max(0.0, seconds * self.time_scale)
        if interrupt is None:
            await asyncio.sleep(real)
            return False
        try:
            await asyncio.wait_for(interrupt.wait(), real)
            return True
        except TimeoutError:
            return False

    # -- output -------------------------------------------------------------------------------------
    async def broadcast(self, pairs: list[tuple[str, str]], *, chan: Chan | None = None) -> None:
        pairs = list(pairs)
        # Timestamp right after Privilege, where Asterisk writes it (timestampevents = yes)
        pairs.insert(2 if len(pairs) > 1 and pairs[1][0] == "Privilege" else len(pairs), ("Timestamp", ""))
        await self._send_event(pairs, chan=chan)

    async def _send_event(self, pairs: list[tuple[str, str]], *, chan: Chan | None = None) -> None:
        """Write one event to every logged-in session with events on; Timestamp = the virtual clock now."""
        now = f"{self.vnow():.6f}"
        pairs = [(k, now) if k == "Timestamp" else (k, v) for k, v in pairs]
        if chan is not None and self.chan_variables and pairs and pairs[0][0] == "Event":
            have = {v.partition("=")[0] for k, v in pairs if k == "ChanVariable"}
            pairs += [("ChanVariable", f"{k}={v}") for k, v in self.chan_variables.items() if k not in have]
        data = _fmt(pairs)
        if self.on_event_written is not None:  # the moment the server hands the event to the sockets
            self.on_event_written(dict(pairs), time.time())
        for s in list(self.sessions):
            if s.authenticated and s.events_on:
                await s.write(data)

    async def chan_event(self, name: str, chan: Chan, extra: list[tuple[str, str]] | None = None,
                         privilege: str = "call,all") -> None:
        await self.broadcast([("Event", name), ("Privilege", privilege), *chan.block(), *(extra or [])], chan=chan)

    # -- connection handling --------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            writer.transport.abort()
            return
        s = Session(self, reader, writer)
        self.sessions.append(s)
        writer.write(BANNER.encode())
        await writer.drain()
        auth_deadline = asyncio.get_running_loop().time() + self.authtimeout * self.time_scale
        buf = b""
        try:
            while not s.closed:
                # Split on a blank line; accept LF-only clients by normalising.
                while b"\n\n" not in buf.replace(b"\r\n", b"\n"):
                    timeout = None
                    if not s.authenticated:
                        timeout = max(0.0, auth_deadline - asyncio.get_running_loop().time())
                    try:
                        chunk = await asyncio.wait_for(reader.read(4096), timeout)
                    except TimeoutError:
                        s.close()  # authtimeout: closed silently, as Asterisk does
                        return
                    if not chunk:
                        return
                    buf += chunk
                norm = buf.replace(b"\r\n", b"\n")
                msg, _, rest = norm.partition(b"\n\n")
                buf = rest
                await self._dispatch(s, msg.decode("utf-8", "replace"))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # server shutting down or client gone
        finally:
            s.closed = True
            if s in self.sessions:
                self.sessions.remove(s)
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _dispatch(self, s: Session, text: str) -> None:
        headers: list[tuple[str, str]] = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            k, sep, v = line.partition(":")
            if not sep:
                continue
            headers.append((k.strip().lower(), v.strip()))
        h: dict[str, str] = {}
        variables: list[str] = []
        for k, v in headers:
            if k == "variable":
                variables.extend(x for x in v.split(",") if x)
            else:
                h[k] = v
        action = h.get("action", "")
        rec = dict(h)
        rec["variables"] = variables
        rec["session"] = s.id
        self.actions.append(rec)
        aid = h.get("actionid")

        def resp(status: str, *more: tuple[str, str]) -> bytes:
            pairs = [("Response", status)]
            if aid is not None:
                pairs.append(("ActionID", aid))
            pairs.extend(more)
            return _fmt(pairs)

        a = action.lower()
        if a == "login":
            if s.authenticated:
                await s.write(resp("Success", ("Message", "Already authenticated")))
                return
            if h.get("username") == self.username and h.get("secret") == self.secret:
                s.authenticated = True
                s.events_on = h.get("events", "on").lower() not in ("off", "no", "false", "0")
                await s.write(resp("Success", ("Message", "Authentication accepted")))
                if s.events_on:
                    up = int(time.monotonic() - self._mono0)
                    await s.write(_fmt([("Event", "FullyBooted"), ("Privilege", "system,all"),
                                        ("Uptime", str(up)), ("LastReload", str(up)), ("Status", "Fully Booted")]))
                    await s.write(_fmt([
                        ("Event", "SuccessfulAuth"), ("Privilege", "security,all"),
                        ("EventTV", time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())),
                        ("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", "1"),
                        ("AccountID", self.username), ("SessionID", f"0x{id(s):x}"),
                        ("LocalAddress", f"IPV4/TCP/{self.host}/{self.port}"),
                        ("RemoteAddress", "IPV4/TCP/127.0.0.1/0"), ("UsingPassword", "0"),
                        ("SessionTV", time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())),
                    ]))
                return
            await asyncio.sleep(1.0 * min(1.0, self.time_scale * 10))  # manager.c sleep(1); scaled in tests
            for other in self.sessions:
                if other is not s and other.authenticated and other.events_on:
                    known = h.get("username") == self.username
                    await other.write(_fmt([
                        ("Event", "InvalidPassword" if known else "InvalidAccountID"),
                        ("Privilege", "security,all"), ("Severity", "Error"), ("Service", "AMI"),
                        ("EventVersion", "2" if known else "1"), ("AccountID", h.get("username", "")),
                    ]))
            await s.write(resp("Error", ("Message", "Authentication failed")), force=True)
            s.close()
            return
        if not s.authenticated:
            await s.write(resp("Error", ("Message", "Permission denied")))
            return
        if a == "logoff":
            await s.write(resp("Goodbye", ("Message", "Thanks for all the fish.")))
            s.close()
            return
        if a == "ping":
            await s.write(resp("Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")))
            return
        if a == "originate":
            await self._originate(s, h, variables, resp)
            return
        if a == "hangup":
            chan = self._find_chan(h.get("channel", ""))
            if chan is None:
                await s.write(resp("Error", ("Message", "No such channel")))
                return
            cause = int(h.get("cause", "16") or 16)
            if chan.call is not None and not chan.call.hangup.is_set():
                chan.call.hangup_cause = cause
                chan.call.hangup_by = "action"
                chan.call.hangup.set()
            if chan.hangup_requested is not None:
                chan.hangup_requested.set()
            await s.write(resp("Success", ("Message", "Channel Hungup")))
            return
        if a == "mixmonitor":
            chan = self._find_chan(h.get("channel", ""))
            if chan is None:
                await s.write(resp("Error", ("Message", "No such channel")))
                return
            f = h.get("file") or f"{chan.uniqueid}.wav"
            path = f if f.startswith("/") else f"/var/spool/asterisk/monitor/{f}"
            chan.mixmonitor = path
            await s.write(resp("Success"))
            await self.chan_event("VarSet", chan, [("Variable", "MIXMONITOR_FILENAME"), ("Value", path)],
                                  privilege="dialplan,all")
            await self.chan_event("MixMonitorStart", chan)
            return
        if a == "stopmixmonitor":
            chan = self._find_chan(h.get("channel", ""))
            if chan is None or chan.mixmonitor is None:
                await s.write(resp("Error", ("Message", "No such channel")))
                return
            chan.mixmonitor = None
            await s.write(resp("Success"))
            await self.chan_event("MixMonitorStop", chan)
            return
        if a == "coreshowchannels":
            await s.write(resp("Success", ("EventList", "start"), ("Message", "Channels will follow")))
            chans = list(self.channels.values())
            self._rnd.shuffle(chans)  # the order is not the order of creation
            for c in chans:
                dur = int(time.monotonic() - c.created)
                pairs = [("Event", "CoreShowChannel")]
                if aid is not None:
                    pairs.append(("ActionID", aid))
                blk = c.block()
                pairs += blk
                pairs += [("Application", c.app), ("ApplicationData", c.appdata),
                          ("Duration", time.strftime("%H:%M:%S", time.gmtime(dur))), ("BridgeId", c.bridge)]
                await s.write(_fmt(pairs))
            tail = [("Event", "CoreShowChannelsComplete")]
            if aid is not None:
                tail.append(("ActionID", aid))
            tail += [("EventList", "Complete"), ("ListItems", str(len(chans)))]
            await s.write(_fmt(tail))
            return
        if a == "command":
            cmd = h.get("command", "")
            if cmd == "core show version":
                await s.write(resp("Success", ("Message", "Command output follows"),
                                   ("Output", "Asterisk 22.10.1 (amisim) built by cati")))
            else:
                await s.write(resp("Error", ("Message", "Command output follows"),
                                   ("Output", f"No such command '{cmd}' (type 'core show help {cmd}' for other "
                                              "possible commands)")))
            return
        await s.write(resp("Error", ("Message", f"Invalid/unknown command: {action}. Use Action: ListCommands "
                                                "to show available commands.")))
        if s.events_on:
            await s.write(_fmt([("Event", "RequestBadFormat"), ("Privilege", "security,all"), ("Severity", "Error"),
                                ("Service", "AMI"), ("EventVersion", "1"), ("AccountID", self.username),
                                ("RequestType", f"Action: {action}")]))

    def _find_chan(self, ref: str) -> Chan | None:
        if ref in self.channels:
            return self.channels[ref]
        for c in self.channels.values():
            if c.name == ref:
                return c
        return None

    # -- originate ----------------------------------------------------------------------------------
    async def _originate(self, s: Session, h: dict, variables: list[str], resp) -> None:
        channel = h.get("channel")
        if not channel:
            await s.write(resp("Error", ("Message", "Channel not specified")))
            return
        if "/" not in channel:
            await s.write(resp("Error", ("Message", "Invalid channel")))
            return
        app = h.get("application")
        if not app and (not h.get("context") or not h.get("exten")):
            await s.write(resp("Error", ("Message", "Extension does not exist.")))
            return
        is_async = h.get("async", "false").lower() in ("true", "yes", "1")
        cid = h.get("channelid") or f"{int(self._epoch0)}.{next(self._uid_seq)}"
        other = h.get("otherchannelid") or f"{cid};2"
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        aid = h.get("actionid")

        async def report(success: bool, chan_name: str, reason: int, uid: str | None) -> None:
            if is_async:
                pairs = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
                if aid is not None:
                    pairs.append(("ActionID", aid))
                pairs += [("Response", "Success" if success else "Failure"), ("Channel", chan_name)]
                if app:
                    pairs += [("Application", app), ("Data", h.get("data", ""))]
                else:
                    pairs += [("Context", h.get("context", "")), ("Exten", h.get("exten", ""))]
                cid_num, cid_name = _parse_callerid(h.get("callerid"))
                pairs += [("Reason", str(reason)), ("Uniqueid", uid or "<unknown>"),
                          ("CallerIDNum", cid_num), ("CallerIDName", cid_name)]
                await self.broadcast(pairs)
            if not done.done():
                done.set_result(success)

        async def resolve(success: bool | None, pairs: list[tuple[str, str]] | None = None) -> None:
            # A replayed call's OriginateResponse (only written for an async Originate, as Asterisk does).
            if pairs is not None and is_async:
                await self._send_event(pairs)
            if success is not None and not done.done():
                done.set_result(success)

        report.resolve = resolve
        report.pending = lambda: not done.done()

        if is_async:
            await s.write(resp("Success", ("Message", "Originate successfully queued")))
        else:
            s.frozen = True  # a blocking Originate freezes the whole session, replies and events alike
        coro = self._run_call(h, variables, cid, other, channel, app, report)
        asyncio.get_running_loop().create_task(coro)
        if not is_async:
            ok = await done
            if ok:
                await s.write(resp("Success", ("Message", "Originate successfully queued")), force=True)
            else:
                await s.write(resp("Error", ("Message", "Originate failed")), force=True)
            await s.unfreeze()

    def _new_chan(self, call: Call, name: str, uid: str, context: str, exten: str, state: int) -> Chan:
        c = Chan(name=name, uniqueid=uid, linkedid=call.linkedid, context=context, exten=exten, state=state)
        c.call = call
        call.chans.append(c)
        self.channels[uid] = c
        return c

    def _auto_uid(self) -> str:
        return f"{int(self._epoch0)}.{next(self._uid_seq)}"

    async def _hangup_chan(self, c: Chan, cause: int) -> None:
        texts = CAUSE_TEXT
        if c.uniqueid not in self.channels:
            return
        if c.mixmonitor:
            c.mixmonitor = None
            await self.chan_event("MixMonitorStop", c)
        for spy in self.spies:
            if spy["spyee"] is c and spy.get("active"):
                spy["active"] = False
                await self.broadcast([("Event", "ChanSpyStop"), ("Privilege", "call,all"),
                                      *spy["spyer"].block("Spyer"), *c.block("Spyee")])
                spy["spyer"].call.hangup.set()
        del self.channels[c.uniqueid]
        await self.chan_event("Hangup", c, [("Cause", str(cause)), ("Cause-txt", texts.get(cause, "Unknown"))])

    async def _cdr(self, c: Chan, disposition: str, dest_ctx: str) -> None:
        await self.broadcast([
            ("Event", "Cdr"), ("Privilege", "cdr,all"), ("AccountCode", ""), ("Source", c.cid_num),
            ("Destination", c.exten), ("DestinationContext", dest_ctx), ("CallerID", f'"{c.cid_name}" <{c.cid_num}>'),
            ("Channel", c.name), ("DestinationChannel", ""), ("LastApplication", c.app), ("LastData", c.appdata),
            ("StartTime", time.strftime("%Y-%m-%d %H:%M:%S")), ("AnswerTime", ""),
            ("EndTime", time.strftime("%Y-%m-%d %H:%M:%S")), ("Duration", "0"), ("BillableSeconds", "0"),
            ("Disposition", disposition), ("AMAFlags", "DOCUMENTATION"), ("UniqueID", c.uniqueid), ("UserField", ""),
        ])

    async def _run_call(self, h, variables, cid, other, channel, app, report) -> None:
        try:
            await self._run_call_inner(h, variables, cid, other, channel, app, report)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a simulator bug must show in the test log
            log.exception("amisim call %s failed", cid)
            await report(False, channel, 0, cid)

    async def _run_call_inner(self, h, variables, cid, other, channel, app, report) -> None:
        tech, _, rest = channel.partition("/")
        cid_num, cid_name = _parse_callerid(h.get("callerid"))
        # Duplicate ChannelId, unknown technology: failure with Reason 0 and no channel events.
        if cid in self.channels or tech not in ("Local", "PJSIP", "SIP"):
            await report(False, channel, 0, cid if h.get("channelid") else None)
            return
        if tech != "Local":
            # A direct PJSIP originate: treat as an interviewer device that answers.
            exten, ctx = rest, "from-internal"
        else:
            exten, _, ctx = rest.partition("@")
            ctx = ctx.split("/")[0]  # Local channel options (/n) are not part of the channel's name
        if not app and ctx not in ("cati-respondent", "resp"):
            call = Call(cid)
            self.calls[cid] = call
            try:
                await self._interviewer_first(call, h, variables, cid, other, channel, exten, report)
            finally:
                self.calls.pop(cid, None)
            return
        seq = next(self._chan_seq)
        call = Call(cid)
        self.calls[cid] = call
        base = f"Local/{exten}@{ctx}-{seq:08x}"
        c1 = self._new_chan(call, base + ";1", cid, ctx, exten, 0)
        c2 = self._new_chan(call, base + ";2", other, ctx, exten, 4)
        await self.chan_event("Newchannel", c1)
        await self.chan_event("Newchannel", c2)
        await self.chan_event("Newexten", c1, [("Extension", exten), ("Application", "AppDial2"),
                                               ("AppData", "(Outgoing Line)")], privilege="dialplan,all")
        for c in (c1, c2):
            c.cid_num, c.cid_name = cid_num, cid_name
            c.conn_num, c.conn_name = cid_num, cid_name
        for var in variables:
            k, _, v = var.partition("=")
            for c in (c1, c2):
                await self.chan_event("VarSet", c, [("Variable", k), ("Value", v)], privilege="dialplan,all")
        await self.broadcast([
            ("Event", "LocalBridge"), ("Privilege", "call,all"), *c1.block("LocalOne"), *c2.block("LocalTwo"),
            ("Context", ctx), ("Exten", exten), ("LocalOptimization", "Yes")])
        # Originate-leg DialBegin/DialEnd carry no caller fields, only Dest*.
        await self.broadcast([("Event", "DialBegin"), ("Privilege", "call,all"), *c1.block("Dest"),
                              ("DialString", f"{exten}@{ctx}")])
        timeout_s = int(h.get("timeout", "30000") or 30000) / 1000.0
        if ctx in ("cati-respondent", "resp"):
            await self._respondent_first(call, h, app, c1, c2, exten, timeout_s, report)
        else:
            await self._application_call(call, h, app, c1, c2, exten, report)
        self.calls.pop(cid, None)

    def script_for(self, number: str) -> Script:
        return self.scripts.get(number, self.default)

    # respondent-first: the transcripts' s1..s6 ---------------------------------------------------------
    async def _respondent_first(self, call, h, app, c1, c2, number, timeout_s, report) -> None:
        sc = self.script_for(number)
        o = sc.outcome
        if o in ("busy", "congestion"):
            c2.state = 7
            await self.chan_event("Newexten", c2, [("Extension", number),
                                                   ("Application", "Busy" if o == "busy" else "Congestion"),
                                                   ("AppData", "3")], privilege="dialplan,all")
            await self.chan_event("Newstate", c2)
            await self.broadcast([("Event", "DialEnd"), ("Privilege", "call,all"), *c1.block("Dest"),
                                  ("DialStatus", "BUSY" if o == "busy" else "CONGESTION")])
            await self.chan_event("HangupRequest", c2, [("Cause", "0")])
            disp = "BUSY" if o == "busy" else "FAILED"
            await self._cdr(c1, disp, "cati-respondent")
            await self._cdr(c2, disp, "cati-respondent")
            resp_first = self._rnd.random() < 0.5  # event order within a millisecond varies
            if resp_first:
                await report(False, h["channel"], 5 if o == "busy" else 8, c1.uniqueid)
            await self.chan_event("SoftHangupRequest", c2, [("Cause", "16")])
            await self._hangup_chan(c2, 17 if o == "busy" else 34)
            await self._hangup_chan(c1, 0)
            if not resp_first:
                await report(False, h["channel"], 5 if o == "busy" else 8, c1.uniqueid)
            return
        if o in ("rejected", "hangup17", "unallocated"):
            cause = {"rejected": 21, "hangup17": 17, "unallocated": 1}[o]
            await self.chan_event("Newexten", c2, [("Extension", number), ("Application", "Hangup"),
                                                   ("AppData", str(cause))], privilege="dialplan,all")
            await self.chan_event("SoftHangupRequest", c2, [("Cause", "16")])
            await self.chan_event("HangupRequest", c1, [("Cause", str(cause))])
            await self._hangup_chan(c2, cause)
            await self.broadcast([("Event", "DialEnd"), ("Privilege", "call,all"), *c1.block("Dest"),
                                  ("DialStatus", "BUSY" if cause == 17 else "NOANSWER")])
            await self._hangup_chan(c1, cause)
            await report(False, h["channel"], 0, c1.uniqueid)  # Reason 0, even for Hangup(17)
            return
        if o == "notplaced":
            await self._hangup_chan(c2, 0)
            await report(False, h["channel"], 0, c1.uniqueid)
            await self._hangup_chan(c1, 0)
            return
        # ringing phase
        c1.state = 5
        await self.chan_event("Newexten", c2, [("Extension", number), ("Application", "Ringing"), ("AppData", "")],
                              privilege="dialplan,all")
        await self.chan_event("Newstate", c1)  # the originated ;1 leg goes Ringing; ;2 stays Ring
        await self.broadcast([("Event", "DialState"), ("Privilege", "call,all"), *c1.block("Dest"),
                              ("DialStatus", "RINGING")])
        ring = (2.0 if sc.ring_s is None else sc.ring_s) if o in ("human", "machine", "notsure") else timeout_s
        interrupted = await self.vsleep(min(ring, timeout_s), call.hangup)
        if interrupted:
            await self.broadcast([("Event", "DialEnd"), ("Privilege", "call,all"), *c1.block("Dest"),
                                  ("DialStatus", "NOANSWER")])
            await self._hangup_chan(c2, 0)
            await report(False, h["channel"], 0, c1.uniqueid)
            await self._hangup_chan(c1, 0)
            return
        if o not in ("human", "machine", "notsure") or ring > timeout_s:
            # Ringing timeout: no DialEnd; cause 19 on both legs; Reason 3.
            await self.chan_event("HangupRequest", c2, [("Cause", "19")])
            await self._hangup_chan(c2, 19)
            await report(False, h["channel"], 3, c1.uniqueid)
            await self._cdr(c2, "NO ANSWER", "cati-respondent")
            await self._hangup_chan(c1, 19)
            return
        # answered
        c2.state = 6
        await self.chan_event("Newstate", c2)
        c1.state = 6
        await report(True, c1.name, 4, c1.uniqueid)
        await self.chan_event("Newstate", c1)
        await self.broadcast([("Event", "DialEnd"), ("Privilege", "call,all"), *c1.block("Dest"),
                              ("DialStatus", "ANSWER")])
        await self._amd_and_talk(call, c1, sc, [c1, c2])

    async def _amd_and_talk(self, call: Call, amd_chan: Chan, sc: Script, chans: list[Chan]) -> None:
        if sc.outcome in ("human", "machine", "notsure") and amd_chan is not None:
            amd_chan.app, amd_chan.appdata = "AMD", ""
            await self.chan_event("Newexten", amd_chan, [("Extension", "s"), ("Application", "AMD"), ("AppData", "")],
                                  privilege="dialplan,all")
            if await self.vsleep(2.2 if sc.amd_s is None else sc.amd_s, call.hangup):
                for c in chans:
                    await self._hangup_chan(c, call.hangup_cause)
                return
            status = {"human": "HUMAN", "machine": "MACHINE", "notsure": "NOTSURE"}[sc.outcome]
            cause = sc.amd_cause or {"HUMAN": "HUMAN-800-800", "MACHINE": "MAXWORDS-3-2",
                                     "NOTSURE": "NOAUDIODATA-2500"}[status]
            await self.chan_event("VarSet", amd_chan, [("Variable", "AMDSTATUS"), ("Value", status)],
                                  privilege="dialplan,all")
            await self.chan_event("VarSet", amd_chan, [("Variable", "AMDCAUSE"), ("Value", cause)],
                                  privilege="dialplan,all")
            await self.broadcast([("Event", "UserEvent"), ("Privilege", "user,all"), *amd_chan.block(),
                                  ("UserEvent", "CatiAMD"), ("Status", status), ("Cause", cause)], chan=amd_chan)
            if status == "MACHINE":
                for c in chans:
                    await self.chan_event("SoftHangupRequest", c, [("Cause", "16")])
                    await self._hangup_chan(c, 16)
                return
        await self.vsleep(sc.talk_s, call.hangup)
        cause = call.hangup_cause if call.hangup.is_set() else 16
        order = list(chans)
        if self._rnd.random() < 0.5:
            order.reverse()
        for c in order:
            await self.chan_event("SoftHangupRequest", c, [("Cause", "16")])
            await self._hangup_chan(c, cause)

    # interviewer-first: replayed from the lab recordings ----------------------------------------------
    def scenario_for(self, number: str, extension: str, variables: dict[str, str]) -> tuple[str, Script]:
        """The recorded lab scenario an interviewer-first call replays, and the number's script.

        The interviewer's phone decides first (``1099`` busy, ``1098`` unreachable, as in the lab). Otherwise
        the number's outcome is mapped by :data:`SCENARIO_OF_OUTCOME`; an answering outcome whose ``ring_s``
        reaches the dial timeout rings out (``no_answer``). Without AMD (``CATI_AMD=0``) a person, a machine
        and a silent line all look alike on the wire (``person_noamd``), and a callee who hangs up 1 s after
        answering is ``respondent_hangs_up``; the other outcomes happen before any answer and replay their AMD-on
        recording (the Dial's AppData is rewritten; the ``;1`` leg's dialplan priorities stay as recorded).
        """
        if extension in PHONE_SCENARIOS:
            return PHONE_SCENARIOS[extension], self.script_for(number)
        sc = self.script_for(number)
        if sc.outcome not in SCENARIO_OF_OUTCOME:
            raise ValueError(f"amisim: outcome {sc.outcome!r} has no lab recording for an interviewer-first call")
        answers = sc.outcome in ("human", "machine", "notsure", "hangup_during_amd")
        try:
            dial_timeout = float(variables.get("CATI_TIMEOUT", "30"))
        except ValueError:
            dial_timeout = 30.0
        if answers and sc.ring_s is not None and sc.ring_s >= dial_timeout:
            return "no_answer", sc
        if variables.get("CATI_AMD", "0") != "1":
            if sc.outcome in ("human", "machine", "notsure"):
                return "person_noamd", sc
            if sc.outcome == "hangup_during_amd":
                return "respondent_hangs_up", sc
        if sc.outcome == "human" and variables.get("CATI_RECORD") == "1" and variables.get("CATI_AMD") == "1":
            return "recorded", sc
        return SCENARIO_OF_OUTCOME[sc.outcome], sc

    def recording(self, name: str) -> Recording:
        return load_recording(name, self.recordings_dir)

    def _timeline(self, rec: Recording, sc: Script, dial_timeout: float) -> tuple[list[float], list[bool]]:
        """Virtual times of ``rec``'s events with the script's durations applied, and where a hang-up may cut in.

        Stretched: the interviewer's phone answering (``interviewer_answer_s``), the ringing (``ring_s``; a
        ring-out lasts the dial timeout) and machine detection (``amd_s``). A hang-up can only cut in where the
        call waits (a quiet gap), never inside a burst of events that Asterisk writes in one go.
        """
        vt = list(rec.t)
        shifts: list[tuple[int, float]] = []
        if self.interviewer_answer_s and rec.phone_answer is not None:
            shifts.append((rec.phone_answer, self.interviewer_answer_s))
        if rec.ring_start is not None and rec.ring_end is not None:
            want = dial_timeout if rec.name.startswith("no_answer") else sc.ring_s
            if want is not None:
                shifts.append((rec.ring_end, want - (rec.t[rec.ring_end] - rec.t[rec.ring_start])))
        if rec.amd_end is not None and rec.answer is not None and sc.amd_s is not None:
            shifts.append((rec.amd_end, sc.amd_s - (rec.t[rec.amd_end] - rec.t[rec.answer])))
        for idx, delta in shifts:
            for i in range(idx, len(vt)):
                vt[i] += delta
        quiet = [rec.quiet(i) or (i > 0 and vt[i] - vt[i - 1] >= _QUIET) for i in range(len(vt))]
        return vt, quiet

    async def _interviewer_first(self, call: Call, h: dict, variables: list[str], cid: str, other: str,
                                 channel: str, ext: str, report) -> None:
        number = h.get("exten", "")
        given = {}
        for var in variables:
            k, _, v = var.partition("=")
            given[k] = v
        name, sc = self.scenario_for(number, ext, given)
        rec = self.recording(name)
        if given.get("CATI_RECORD") == "1" and rec.meta["variables"].get("CATI_RECORD") != "1":
            rec = _with_mixmonitor(rec, self.recordings_dir)
        ids = _CallIds(self, cid, other, ext, number, channel, h.get("actionid"), given)
        call.scenario = name
        try:
            dial_timeout = float(given.get("CATI_TIMEOUT", "30"))
        except ValueError:
            dial_timeout = 30.0
        vt, quiet = self._timeline(rec, sc, dial_timeout)
        end = rec.hangup_at if rec.hangup_at is not None else len(rec.events)
        stop = await self._play(call, ids, rec, range(0, end), vt, quiet, report)
        if stop is None and rec.hangup_at is None:
            return
        if stop is None:
            # Answered and bridged: talking until we hang up, the respondent hangs up, or talk_s is over.
            await self.vsleep(sc.talk_s, call.hangup)
            if call.hangup.is_set() and call.hangup_by == "action":
                await self._play(call, ids, rec, range(end, len(rec.events)), rec.t, None, report)
            else:
                await self._play_tail(call, ids, "respondent_hangs_up", call.hangup_cause, report)
        elif rec.ring_start is not None and rec.ring_start < stop <= (rec.ring_end or -1):
            if call.hangup_by == "action":
                await self._play_tail(call, ids, "cancel_ringing", None, report)
            else:  # the callee hangs up while it rings: busy before answer, with the cause asked for
                await self._play_tail(call, ids, "busy_before_answer", call.hangup_cause, report)
        else:
            # Not recorded in the lab (a hang-up while the interviewer's phone answers or AMD listens):
            # every live leg goes, newest first.
            log.info("amisim: hang-up of %s in an unrecorded phase of %s; ending the legs", cid, name)
            for c in list(reversed(call.chans)):
                await self.chan_event("SoftHangupRequest", c, [("Cause", str(call.hangup_cause or 16))])
                await self._hangup_chan(c, call.hangup_cause or 16)
        if report.pending():  # ended before the recording's OriginateResponse: the Originate failed
            await report(False, channel, 0, cid)

    async def _play_tail(self, call: Call, ids: _CallIds, name: str, cause: int | None, report) -> None:
        """The hang-up part of another recording, on this call's legs (roles map by order of appearance)."""
        rec = self.recording(name)
        if name == "respondent_hangs_up":
            bridged = rec.index(lambda m: m.get("Event") == "BridgeEnter" and m.get("Uniqueid") == rec.call)
            start = rec.next_quiet(bridged)
        elif name == "busy_before_answer":
            start = rec.ring_end
        else:
            start = rec.hangup_at
        await self._play(call, ids, rec, range(start, len(rec.events)), rec.t, None, report, cause=cause)

    async def _play(self, call: Call, ids: _CallIds, rec: Recording, idxs, vt: list[float],
                    quiet: list[bool] | None, report, cause: int | None = None) -> int | None:
        """Emit ``rec``'s events ``idxs`` with their recorded (virtual) gaps, scaled by ``time_scale``.

        With ``quiet`` given, a hang-up request interrupts at the first quiet gap: returns the index of the event
        that was not sent. ``None`` when all were sent.
        """
        idxs = list(idxs)
        if not idxs:
            return None
        loop = asyncio.get_running_loop()
        last, prev = loop.time(), idxs[0]
        for i in idxs:
            # Each gap after the previous event: scheduling jitter only lengthens a wait, never shortens it.
            delay = last + (vt[i] - vt[prev]) * self.time_scale - loop.time()
            prev = i
            may_cut = quiet is not None and quiet[i]
            if may_cut and call.hangup.is_set():
                return i
            if delay > 0.0005 or (may_cut and delay > 0):  # a burst is written in one go, as Asterisk does
                if may_cut:
                    try:
                        await asyncio.wait_for(call.hangup.wait(), delay)
                        return i
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(delay)
            await self._emit_recorded(call, ids, rec, i, report, cause)
            last = loop.time()
        return None

    async def _emit_recorded(self, call: Call, ids: _CallIds, rec: Recording, i: int, report,
                             cause: int | None) -> None:
        pairs = ids.translate(rec, i, cause)
        if pairs is None:
            return
        m = dict(pairs)
        ev = m["Event"]
        uid = m.get("Uniqueid")
        chan = self.channels.get(uid) if uid else None
        if ev == "Newchannel" and uid:
            chan = self._new_chan(call, m.get("Channel", ""), uid, m.get("Context", ""), m.get("Exten", ""),
                                  int(m.get("ChannelState", "0") or 0))
        if chan is not None and m.get("Channel") == chan.name:
            chan.state = int(m.get("ChannelState", chan.state) or 0)
            chan.context, chan.exten = m.get("Context", chan.context), m.get("Exten", chan.exten)
            chan.priority = int(m.get("Priority", chan.priority) or 1)
            chan.cid_num, chan.cid_name = m.get("CallerIDNum", chan.cid_num), m.get("CallerIDName", chan.cid_name)
            chan.conn_num = m.get("ConnectedLineNum", chan.conn_num)
            chan.conn_name = m.get("ConnectedLineName", chan.conn_name)
            if ev == "Newexten":
                chan.app, chan.appdata = m.get("Application", chan.app), m.get("AppData", chan.appdata)
            elif ev == "BridgeEnter":
                chan.bridge = m.get("BridgeUniqueid", "")
            elif ev == "BridgeLeave":
                chan.bridge = ""
        if ev == "OriginateResponse":
            await report.resolve(m.get("Response") == "Success", pairs)
            return
        if ev == "Hangup" and chan is not None:
            for spy in self.spies:
                if spy["spyee"] is chan and spy.get("active"):
                    spy["active"] = False
                    await self.broadcast([("Event", "ChanSpyStop"), ("Privilege", "call,all"),
                                          *spy["spyer"].block("Spyer"), *chan.block("Spyee")])
                    spy["spyer"].call.hangup.set()
            # Real Asterisk writes no MixMonitorStop when a recorded channel hangs up (lab: `recorded`).
            chan.mixmonitor = None
            self.channels.pop(chan.uniqueid, None)
            if chan in call.chans:
                call.chans.remove(chan)
        await self._send_event(pairs, chan=chan)

    # an application on the interviewer's leg (supervisor ChanSpy): synthetic, not from the lab -------------
    async def _application_call(self, call, h, app, c1, c2, exten, report) -> None:
        # The supervisor's phone answers, then the application runs on the ;1 leg.
        if await self.vsleep(self.interviewer_answer_s, call.hangup):
            await self._hangup_chan(c2, 0)
            await report(False, h["channel"], 0, c1.uniqueid)
            await self._hangup_chan(c1, 0)
            return
        await self.chan_event("Newexten", c2, [("Extension", exten), ("Application", "Answer"), ("AppData", "")],
                              privilege="dialplan,all")
        c2.state = 6
        await self.chan_event("Newstate", c2)
        c1.state = 6
        await self.chan_event("Newstate", c1)
        await self.broadcast([("Event", "DialEnd"), ("Privilege", "call,all"), *c1.block("Dest"),
                              ("DialStatus", "ANSWER")])
        await report(True, c1.name, 4, c1.uniqueid)
        await self._run_app(call, h, app, c1, c2)

    async def _run_app(self, call: Call, h: dict, app: str, c1: Chan, c2: Chan) -> None:
        data = h.get("data", "")
        c1.app, c1.appdata = app, data
        await self.chan_event("Newexten", c1, [("Extension", ""), ("Application", app), ("AppData", data)],
                              privilege="dialplan,all")
        if app.lower() == "chanspy":
            prefix, _, opts = data.partition(",")
            if "q" not in opts or "E" not in opts:
                log.warning("amisim: ChanSpy without q/E options: %r", opts)
            mode = "barge" if "B" in opts else "whisper" if "w" in opts else "listen"
            spy = {"mode": mode, "options": opts, "spyer": c1, "spyee": None, "active": False, "prefix": prefix}
            self.spies.append(spy)
            while not call.hangup.is_set():
                spyee = next((c for c in self.channels.values() if c.name.startswith(prefix) and c.call is not call),
                             None)
                if spyee is not None:
                    spy["spyee"], spy["active"] = spyee, True
                    await self.broadcast([("Event", "ChanSpyStart"), ("Privilege", "call,all"),
                                          *c1.block("Spyer"), *spyee.block("Spyee")])
                    break
                if await self.vsleep(0.1, call.hangup):
                    break
            await call.hangup.wait()
            if spy["active"]:
                spy["active"] = False
                await self.broadcast([("Event", "ChanSpyStop"), ("Privilege", "call,all"),
                                      *c1.block("Spyer"), *spy["spyee"].block("Spyee")])
            await self._hangup_chan(c1, 0)
            await self._hangup_chan(c2, 0)
            return
        # Any other application: Wait(n)
        try:
            secs = float(data or 1)
        except ValueError:
            secs = 1.0
        await self.vsleep(secs, call.hangup)
        await self._hangup_chan(c1, 0)
        await self._hangup_chan(c2, 16)


# ---------------------------------------------------------------------------------------------------
# Lab recordings: what the interviewer-first calls replay
# ---------------------------------------------------------------------------------------------------

#: Where ``scripts/record_lab_transcripts.py`` writes the real Asterisk transcripts.
LAB_RECORDINGS = Path(__file__).resolve().parents[2] / "tests" / "telephony" / "data" / "lab"

#: Script outcome → the recorded lab scenario it replays (AMD on; see :meth:`AmiSimServer.scenario_for`).
SCENARIO_OF_OUTCOME = {
    "human": "person", "machine": "machine", "notsure": "silent", "busy": "busy", "noanswer": "no_answer",
    "congestion": "congestion", "rejected": "rejected", "unallocated": "unallocated",
    "hangup17": "busy_before_answer", "hangup_during_amd": "hangup_during_amd",
}
#: The lab's interviewer phones that fail (:data:`cati.telephony.lab.BUSY_PHONE`, ``UNREACHABLE_PHONE``).
PHONE_SCENARIOS = {"1099": "phone_busy", "1098": "phone_unreachable"}

_QUIET = 0.25  # s: a gap this long in a recording is the call waiting (ringing, AMD, talk), not processing
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SEQ = re.compile(r"((?:Local|PJSIP)/[^\s,;]*?-)([0-9a-f]{8})(?![0-9a-f])")
_TIMER_VARS = ("TIME", "TIME_MS")  # ANSWEREDTIME, RINGTIME_MS …: numbers, never ids


def _chan_kind(prefix: str) -> str:
    """``Local/…-`` → local, ``PJSIP/cati-trunk-`` → trunk, any other PJSIP channel → phone."""
    if prefix.startswith("Local/"):
        return "local"
    return "trunk" if prefix.startswith("PJSIP/cati-trunk-") else "phone"


def _hget(pairs, name: str) -> str | None:
    for k, v in pairs:
        if k == name:
            return v
    return None


@dataclass
class Recording:
    """One lab transcript: the server's events (responses to our actions left out) and their times.

    ``hangup_at`` is the index of the first event after our ``Hangup`` action (``None``: the call ended
    by itself). Roles are found in the events themselves: the phone leg is what the ``;2`` half dials,
    the respondent (trunk) leg what the originated ``;1`` half dials.
    """

    name: str
    meta: dict
    events: list[list[tuple[str, str]]]
    t: list[float]
    hangup_at: int | None
    call: str = ""
    uids: list[str] = field(default_factory=list)      # auto Uniqueids in order of appearance
    seqs: dict[str, str] = field(default_factory=dict)  # channel kind (local, phone, trunk) -> sequence number
    bridges: list[str] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)     # other uuids (BRIDGEPVTCALLID …)
    phone: str | None = None
    trunk: str | None = None
    phone_answer: int | None = None   # first event after the interviewer's phone answered (or refused)
    ring_start: int | None = None
    ring_end: int | None = None
    answer: int | None = None
    amd_end: int | None = None
    templates: list = field(default_factory=list)

    @property
    def amd(self) -> bool:
        return self.meta["variables"].get("CATI_AMD") == "1"

    def quiet(self, i: int) -> bool:
        return i > 0 and self.t[i] - self.t[i - 1] >= _QUIET

    def next_quiet(self, after: int | None, stop: int | None = None) -> int | None:
        if after is None:
            return None
        for i in range(after + 1, len(self.events) if stop is None else stop):
            if self.quiet(i):
                return i
        return None

    def index(self, pred, start: int = 0) -> int | None:
        for i in range(start, len(self.events)):
            if pred(dict(self.events[i])):
                return i
        return None

    def _roles(self) -> None:
        self.call = self.meta["call_id"]
        other = f"{self.call};2"
        for pairs in self.events:
            for k, v in pairs:
                low = k.lower()
                if (low.endswith("uniqueid") or low.endswith("linkedid")) and low != "bridgeuniqueid":
                    if v not in (self.call, other) and v not in self.uids:
                        self.uids.append(v)
                elif low == "bridgeuniqueid" and v not in self.bridges:
                    self.bridges.append(v)
                for m in _SEQ.finditer(v):
                    self.seqs.setdefault(_chan_kind(m.group(1)), m.group(2))
                for u in _UUID.findall(v):
                    if u != self.call and u not in self.bridges and u not in self.uuids and low != "bridgeuniqueid":
                        self.uuids.append(u)
        self.uuids = [u for u in self.uuids if u not in self.bridges]
        for m in map(dict, self.events):
            if m.get("Event") == "DialBegin" and m.get("Uniqueid") == other:
                self.phone = m.get("DestUniqueid")
            elif m.get("Event") == "DialBegin" and m.get("Uniqueid") == self.call:
                self.trunk = m.get("DestUniqueid")
        end = self.hangup_at
        # The phone's answer (or refusal): the longest wait between the ;2 leg's DialBegin and its DialEnd.
        # Not simply the phone's Newstate: Asterisk may write the OriginateResponse it causes first.
        dial = self.index(lambda m: m.get("Event") == "DialBegin" and m.get("Uniqueid") == other)
        dial_end = self.index(lambda m: m.get("Event") == "DialEnd" and m.get("Uniqueid") == other)
        if dial is not None and dial_end is not None and dial_end > dial:
            self.phone_answer = max(range(dial + 1, dial_end + 1), key=lambda i: self.t[i] - self.t[i - 1])
        self.ring_start = self.index(lambda m: (m.get("Event") == "Newstate" and m.get("Uniqueid") == self.trunk
                                                and m.get("ChannelState") == "5")
                                     or (m.get("Event") == "DialState" and m.get("DestUniqueid") == self.trunk))
        self.ring_end = self.next_quiet(self.ring_start, end)
        self.answer = self.index(lambda m: m.get("Event") == "Newstate" and m.get("Uniqueid") == self.trunk
                                 and m.get("ChannelState") == "6")
        if self.amd and self.answer is not None:
            self.amd_end = self.next_quiet(self.answer, end)
        self._compile()

    def _compile(self) -> None:
        """Each event as a template: literal text and the roles (ids) a call fills in, found once per recording.

        Parts: ``str`` literal, or a role ``("call",)``, ``("other",)``, ``("uid", k)``, ``("bridge", k)``,
        ``("uuid", k)``, ``("seq", kind)``, ``("local",)``, ``("localrest",)``, ``("dial",)``, ``("ext",)``,
        ``("number",)``. Special values: ``("aid",)``, ``("var", name, parts)`` (a ``CATI_*`` VarSet value),
        ``("chanvar", name, parts)``, ``("cause", header, value)`` (the respondent leg's cause).
        """
        m = self.meta
        roles: dict[str, tuple] = {f"{self.call};2": ("other",), self.call: ("call",)}
        for kind, role in (("uids", "uid"), ("bridges", "bridge"), ("uuids", "uuid")):
            for k, old in enumerate(getattr(self, kind)):
                roles[old] = (role, k)
        roles[f"Local/{m['extension']}@cati-interviewer/n"] = ("local",)
        roles[f"{m['extension']}@cati-interviewer/n"] = ("localrest",)
        rt = m["variables"].get("CATI_TIMEOUT", "")
        for suffix in (f",{rt},U(cati-amd)", f",{rt}"):
            roles[f"PJSIP/{m['number']}@cati-trunk{suffix}"] = ("dial",)
        roles[m["extension"]] = ("ext",)
        roles[m["number"]] = ("number",)
        keys = sorted(roles, key=len, reverse=True)
        rx = re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(re.escape(k) for k in keys) + r")(?![0-9])")

        def tokens(text: str) -> list:
            out, pos = [], 0
            for mo in rx.finditer(text):
                if mo.start() > pos:
                    out.append(text[pos:mo.start()])
                out.append(roles[mo.group(0)])
                pos = mo.end()
            if pos < len(text):
                out.append(text[pos:])
            return out

        def parts(text: str) -> list:
            out, pos = [], 0
            for mo in _SEQ.finditer(text):
                out += tokens(text[pos:mo.end(1)])
                out.append(("seq", _chan_kind(mo.group(1))))
                pos = mo.end()
            return out + tokens(text[pos:])

        self.templates = []
        for pairs in self.events:
            ev = pairs[0][1]
            var = _hget(pairs, "Variable") if ev == "VarSet" else None
            uid = _hget(pairs, "Uniqueid")
            tpl: list[tuple[str, object]] = []
            for k, v in pairs:
                if k == "Timestamp":
                    tpl.append((k, ""))  # the virtual clock, when written
                elif k == "ActionID" and v == m.get("action_id"):
                    tpl.append((k, ("aid",)))
                elif k == "Value" and var and var.startswith("CATI_"):
                    tpl.append((k, ("var", var, parts(v))))
                elif k == "Value" and var and var.endswith(_TIMER_VARS):
                    tpl.append((k, v))  # numbers, never ids
                elif k.endswith("ChanVariable") and v.startswith("CATI_") and "=" in v:
                    name, _, val = v.partition("=")
                    tpl.append((k, ("chanvar", name, parts(val))))
                elif uid == self.trunk and ev in ("Hangup", "HangupRequest") and k in ("Cause", "Cause-txt"):
                    tpl.append((k, ("cause", k, v)))
                else:
                    p = parts(v)
                    tpl.append((k, p[0] if len(p) == 1 and isinstance(p[0], str) else "" if not p else p))
            self.templates.append(tpl)


_recordings: dict[tuple[str, str], Recording] = {}
_recordings_lock = threading.Lock()


def load_recording(name: str, directory: Path | str | None = None) -> Recording:
    """The lab transcript ``<directory>/<name>.json`` (cached)."""
    path = Path(directory or LAB_RECORDINGS) / f"{name}.json"
    key = (str(path), name)
    with _recordings_lock:
        if key in _recordings:
            return _recordings[key]
        if not path.exists():
            raise FileNotFoundError(f"amisim: no lab recording {path} (run scripts/record_lab_transcripts.py)")
        data = json.loads(path.read_text())
        events, t, hangup_at = [], [], None
        for n, m in enumerate(data["messages"]):
            if data.get("hangup_sent") is not None and n >= data["hangup_sent"] and hangup_at is None:
                hangup_at = len(events)
            pairs = [(k, v) for k, v in m["h"]]
            if pairs and pairs[0][0] == "Event":  # responses belong to the action handlers
                events.append(pairs)
                t.append(float(m["t"]))
        rec = Recording(name, {k: v for k, v in data.items() if k != "messages"}, events, t, hangup_at)
        rec._roles()
        _recordings[key] = rec
        return rec


def _with_mixmonitor(rec: Recording, directory: Path | str | None) -> Recording:
    """``rec`` with the dialplan's MixMonitor (``CATI_RECORD=1``) spliced in from the ``recorded`` transcript.

    The ``recorded`` call shows the three messages MixMonitor() adds on the ``;1`` leg (Newexten,
    ``MIXMONITOR_FILENAME``, MixMonitorStart) right after the leg's first GotoIf; the same place exists in
    every other scenario, so they are inserted there, their ids rewritten to ``rec``'s.
    """
    src = load_recording("recorded", directory)

    def first_gotoif(r: Recording) -> int | None:
        return r.index(lambda m: m.get("Event") == "Newexten" and m.get("Uniqueid") == r.call
                       and m.get("Application") == "GotoIf")

    at, src_at = first_gotoif(rec), first_gotoif(src)
    if at is None or src_at is None:
        return rec
    block = []
    for pairs in src.events[src_at + 1:]:
        if _hget(pairs, "Uniqueid") != src.call or _hget(pairs, "Application") == "GotoIf":
            break
        repl = [(src.call, rec.call), (f"{src.meta['extension']}@", f"{rec.meta['extension']}@"),
                (src.meta["number"], rec.meta["number"])]
        if "local" in src.seqs and "local" in rec.seqs:
            repl.append((f"-{src.seqs['local']};", f"-{rec.seqs['local']};"))
        new = []
        for k, v in pairs:
            for a, b in repl:
                v = v.replace(a, b)
            new.append((k, v))
        block.append(new)
    events = rec.events[: at + 1] + block + rec.events[at + 1:]
    t = rec.t[: at + 1] + [rec.t[at]] * len(block) + rec.t[at + 1:]
    hangup_at = None if rec.hangup_at is None else rec.hangup_at + len(block)
    meta = dict(rec.meta, variables=dict(rec.meta["variables"], CATI_RECORD="1"))
    out = Recording(f"{rec.name}+mixmonitor", meta, events, t, hangup_at)
    out._roles()
    return out


class _CallIds:
    """The ids of one simulated call, handed out as a recording's roles first appear (Asterisk's order)."""

    def __init__(self, srv: AmiSimServer, cid: str, other: str, ext: str, number: str, channel: str,
                 action_id: str | None, variables: dict[str, str]):
        self.srv = srv
        self.cid, self.other, self.ext, self.number = cid, other, ext, number
        self.channel, self.action_id, self.variables = channel, action_id, variables
        self._new: dict[str, list[str]] = {"uids": [], "bridges": [], "uuids": []}
        self._seqs: dict[str, str] = {}

    def _nth(self, kind: str, k: int) -> str:
        lst = self._new[kind]
        while len(lst) <= k:
            if kind == "uids":
                lst.append(self.srv._auto_uid())
            else:
                lst.append(str(uuid.UUID(int=self.srv._rnd.getrandbits(128), version=4)))
        return lst[k]

    def _seq(self, kind: str) -> str:
        # Asterisk numbers Local channels apart from the others (the first call: Local/…-00000000 and
        # PJSIP/1001-00000000).
        if kind not in self._seqs:
            counter = self.srv._local_seq if kind == "local" else self.srv._chan_seq
            self._seqs[kind] = f"{next(counter):08x}"
        return self._seqs[kind]

    def _role(self, role: tuple) -> str:
        kind = role[0]
        if kind == "call":
            return self.cid
        if kind == "other":
            return self.other
        if kind in ("uid", "bridge", "uuid"):
            return self._nth(kind + "s", role[1])
        if kind == "seq":
            return self._seq(role[1])
        if kind == "ext":
            return self.ext
        if kind == "number":
            return self.number
        local = self.channel if self.channel.startswith("Local/") else f"Local/{self.ext}@cati-interviewer/n"
        if kind == "local":
            return local
        if kind == "localrest":
            return local[len("Local/"):]
        if kind == "dial":
            amd = ",U(cati-amd)" if self.variables.get("CATI_AMD", "0") == "1" else ""
            return f"PJSIP/{self.number}@cati-trunk,{self.variables.get('CATI_TIMEOUT', '30')}{amd}"
        raise ValueError(f"amisim: unknown role {role!r}")

    def _fill(self, parts) -> str:
        if isinstance(parts, str):
            return parts
        return "".join(p if isinstance(p, str) else self._role(p) for p in parts)

    def translate(self, rec: Recording, i: int, cause: int | None = None) -> list[tuple[str, str]] | None:
        """Event ``i`` of ``rec`` with this call's ids; ``None`` when the call has no such event (a ``CATI_*``
        variable the Originate did not set)."""
        out = []
        for k, t in rec.templates[i]:
            if isinstance(t, tuple):
                kind = t[0]
                if kind == "aid":
                    if self.action_id is not None:
                        out.append((k, self.action_id))
                    continue
                if kind == "var":
                    if t[1] not in self.variables:
                        return None
                    out.append((k, self.variables[t[1]]))
                    continue
                if kind == "chanvar":
                    out.append((k, f"{t[1]}={self._fill(t[2]) if t[1] in self.variables else ''}"))
                    continue
                if kind == "cause":
                    if cause is None:
                        out.append((k, t[2]))
                    else:
                        out.append((k, str(cause) if t[1] == "Cause" else CAUSE_TEXT.get(cause, "Unknown")))
                    continue
            out.append((k, self._fill(t)))
        return out

def _parse_callerid(value: str | None) -> tuple[str, str]:
    if not value:
        return "<unknown>", "<unknown>"
    v = value.strip()
    if "<" in v and v.endswith(">"):
        name, _, num = v[:-1].partition("<")
        name = name.strip().strip('"') or "<unknown>"
        return num.strip() or "<unknown>", name
    return v, "<unknown>"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="AMI simulator (Asterisk 22 shaped) for manual tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5038)
    p.add_argument("--username", default="cati")
    p.add_argument("--secret", default="good")
    p.add_argument("--default", default="human", choices=OUTCOMES)
    p.add_argument("--script", action="append", default=[], metavar="NUMBER=OUTCOME",
                   help="per-number outcome, e.g. 13800000000=busy (repeatable)")
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--split-packets", action="store_true")
    p.add_argument("--recordings", default=None, metavar="DIR",
                   help=f"lab recordings replayed by interviewer-first calls (default {LAB_RECORDINGS})")
    args = p.parse_args(argv)
    scripts = {}
    for item in args.script:
        num, _, outcome = item.partition("=")
        scripts[num] = outcome
    srv = AmiSimServer(args.username, args.secret, scripts=scripts, default=args.default,
                       time_scale=args.time_scale, split_packets=args.split_packets, recordings_dir=args.recordings)
    host, port = srv.start(args.host, args.port)
    print(f"amisim listening on {host}:{port} (user {args.username}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
