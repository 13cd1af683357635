"""A protocol-faithful Asterisk Manager Interface (AMI) server for tests and manual trials.

Asterisk is not packaged for Debian 12, so the AMI adapters are tested against this server over real
TCP. What it sends is modelled on real Asterisk 22.10.1 transcripts (``../shared/asterisk-ami``):

* banner ``Asterisk Call Manager/11.0.0`` (the AMI version), CRLF framing, LF-only input accepted,
  header names case-insensitive, ``ActionID`` echoed second, no ActionID line when none was sent;
* ``Login``: success followed by unsolicited ``FullyBooted`` and ``SuccessfulAuth``; bad credentials
  answered after 1 s (scaled) with ``Authentication failed`` and the socket closed; actions before
  login get ``Permission denied``; unauthenticated sockets closed after ``authtimeout``;
* ``Originate`` async (always "successfully queued", the outcome in ``OriginateResponse``) and
  blocking (no OriginateResponse, the session frozen - replies and events held - until resolved);
* per-number scripted outcomes with the event sequences of the transcripts: Local channel pairs,
  ``;1`` leg hanging up with cause 0 while the real cause sits on ``;2``, Reason 0 for Hangup(17)
  and Hangup(21), no DialEnd on a ringing timeout, DialBegin without caller fields for the
  originate leg, Linkedid = ChannelId everywhere, ``<ChannelId>;2`` without OtherChannelId,
  ``Channel:`` = the requested string on failure, duplicate ChannelId → Reason 0 with no events;
* ``Hangup`` (by name or Uniqueid), ``ChanSpy`` via Originate Application (q, qw, qB + E),
  ``MixMonitor``/``StopMixMonitor``, ``CoreShowChannels``, ``Ping``, ``Logoff``, ``Command``;
* faults: messages split across packets and coalesced, idle periods, dropped connections,
  ``ChanVariable`` headers, frozen sessions.

Two dialplan shapes are understood (the same as ``config/asterisk/extensions.conf``):

``interviewer-first`` (what :mod:`cati.telephony.ami` uses)
    ``Channel: Local/<ext>@cati-interviewer``, ``Context: cati-dialout``, ``Exten: <number>``. The
    interviewer leg answers, then ``Dial(PJSIP/<number>@trunk,<t>,U(cati-amd))`` reaches the
    respondent; busy/no-answer show as DialBegin/DialEnd with caller fields and the cause on the
    PJSIP channel's Hangup.
``respondent-first`` (the transcripts' s1–s6)
    ``Channel: Local/<number>@cati-respondent`` (or ``@resp``), any after-answer Context.

Time can be compressed: ``time_scale=0.01`` makes a 20 s ring last 0.2 s while the ``Timestamp``
header (``timestampevents = yes`` in manager.conf) carries virtual seconds, so a client that trusts
Timestamp sees true durations.

Run ``python -m cati.telephony.amisim --port 5038`` for manual trials.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CRLF = "\r\n"
BANNER = "Asterisk Call Manager/11.0.0\r\n"

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}

#: Scripted respondent outcomes understood by the simulator.
OUTCOMES = (
    "human", "machine", "notsure", "busy", "noanswer", "congestion", "rejected",
    "unallocated", "notplaced", "hangup17",
)


@dataclass
class Script:
    """What happens when a number is dialled (virtual seconds)."""

    outcome: str = "human"
    ring_s: float = 2.0          # ringing before answer (human/machine) or before the network gives up
    amd_s: float = 2.2           # AMD analysis time after answer
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
        self.hangup_cause = 16
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
        self._rnd = random.Random(seed)
        self._session_ids = itertools.count(1)
        self._chan_seq = itertools.count(0)
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

    def hangup(self, ref: str, cause: int = 16) -> None:
        """Hang up a live call from the "network" side (the respondent hangs up)."""

        def do() -> None:
            chan = self._find_chan(ref)
            if chan is not None and chan.call is not None:
                chan.call.hangup_cause = cause
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
        if chan is not None and self.chan_variables and pairs and pairs[0][0] == "Event":
            for k, v in self.chan_variables.items():
                pairs.append(("ChanVariable", f"{k}={v}"))
        pairs.append(("Timestamp", f"{self.vnow():.6f}"))
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
            if chan.call is not None:
                chan.call.hangup_cause = cause
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
        texts = {0: "Unknown", 1: "Unallocated (unassigned) number", 16: "Normal Clearing", 17: "User busy",
                 19: "User alerting, no answer", 21: "Call Rejected", 34: "Circuit/channel congestion"}
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
            await self._interviewer_first(call, h, variables, app, c1, c2, exten, timeout_s, report)
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
        ring = sc.ring_s if o in ("human", "machine", "notsure") else timeout_s
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
            if await self.vsleep(sc.amd_s, call.hangup):
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

    # interviewer-first: the shape cati uses ---------------------------------------------------------
    async def _interviewer_first(self, call, h, variables, app, c1, c2, exten, timeout_s, report) -> None:
        # Interviewer (or supervisor) phone answers.
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
        if app:
            await self._run_app(call, h, app, c1, c2)
            return
        number = h.get("exten", "")
        c1.context, c1.exten = h.get("context", ""), number
        sc = self.script_for(number)
        dial_timeout = timeout_s
        for var in variables:
            k, _, v = var.partition("=")
            if k == "CATI_TIMEOUT":
                try:
                    dial_timeout = float(v)
                except ValueError:
                    pass
        c1.app, c1.appdata = "Dial", f"PJSIP/{number}@trunk,{int(dial_timeout)},U(cati-amd)"
        await self.chan_event("Newexten", c1, [("Extension", number), ("Application", "Dial"),
                                               ("AppData", c1.appdata)], privilege="dialplan,all")
        for var in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
                    "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME", "PROGRESSTIME_MS"):
            await self.chan_event("VarSet", c1, [("Variable", var), ("Value", "")], privilege="dialplan,all")
        if sc.outcome == "notplaced":
            # Trunk refused the channel outright: no callee channel, DialEnd-less CHANUNAVAIL.
            await self.chan_event("VarSet", c1, [("Variable", "DIALSTATUS"), ("Value", "CHANUNAVAIL")],
                                  privilege="dialplan,all")
            await self._hangup_pair(c1, c2, 16)
            return
        seq = next(self._chan_seq)
        r = self._new_chan(call, f"PJSIP/trunk-{seq:08x}", self._auto_uid(), "cati-trunk", number, 0)
        r.cid_num, r.cid_name = c1.cid_num, c1.cid_name
        r.app, r.appdata = "AppDial", "(Outgoing Line)"
        await self.chan_event("Newchannel", r)
        await self.chan_event("VarSet", r, [("Variable", "DIALEDPEERNUMBER"), ("Value", f"{number}@trunk")],
                              privilege="dialplan,all")
        dial_caller = [("Event", "DialBegin"), ("Privilege", "call,all"), *c1.block(), *r.block("Dest"),
                       ("DialString", f"{number}@trunk")]
        await self.broadcast(dial_caller)

        async def dial_end(status: str) -> None:
            await self.broadcast([("Event", "DialEnd"), ("Privilege", "call,all"), *c1.block(), *r.block("Dest"),
                                  ("DialStatus", status)])

        o = sc.outcome
        immediate = {"busy": (17, "BUSY", 7), "congestion": (34, "CONGESTION", 7), "rejected": (21, "BUSY", 0),
                     "unallocated": (1, "CHANUNAVAIL", 0), "hangup17": (17, "BUSY", 0)}
        if o in immediate:
            cause, status, st = immediate[o]
            await asyncio.sleep(0.0005)
            if st:
                r.state = st
                await self.chan_event("Newstate", r)
            await dial_end(status)
            await self._cdr(r, "BUSY" if status == "BUSY" else "FAILED", "cati-trunk")
            await self._hangup_chan(r, cause)
            await self.chan_event("VarSet", c1, [("Variable", "DIALSTATUS"), ("Value", status)],
                                  privilege="dialplan,all")
            await self._hangup_pair(c1, c2, 16)
            return
        # Ringing.
        r.state = 5
        await self.chan_event("Newstate", r)
        await self.broadcast([("Event", "DialState"), ("Privilege", "call,all"), *c1.block(), *r.block("Dest"),
                              ("DialStatus", "RINGING")])
        answers = o in ("human", "machine", "notsure")
        ring = sc.ring_s if answers else dial_timeout
        interrupted = await self.vsleep(min(ring, dial_timeout), call.hangup)
        if interrupted or not answers or ring > dial_timeout:
            status = "CANCEL" if interrupted else "NOANSWER"
            await dial_end(status)
            await self._cdr(r, "NO ANSWER", "cati-trunk")
            await self._hangup_chan(r, 0 if interrupted else 19)
            await self.chan_event("VarSet", c1, [("Variable", "DIALSTATUS"), ("Value", status)],
                                  privilege="dialplan,all")
            await self._hangup_pair(c1, c2, 16)
            return
        # Answered: the U(cati-amd) gosub runs AMD() on the callee before the bridge.
        r.state = 6
        await self.chan_event("Newstate", r)
        chans = [r, c1, c2]
        if o in ("human", "machine", "notsure"):
            r.context, r.exten, r.app = "cati-amd", "s", "AMD"
            await self.chan_event("Newexten", r, [("Extension", "s"), ("Application", "AMD"), ("AppData", "")],
                                  privilege="dialplan,all")
            if await self.vsleep(sc.amd_s, call.hangup):
                await dial_end("ANSWER")
                for c in chans:
                    await self._hangup_chan(c, 16)
                return
            status = {"human": "HUMAN", "machine": "MACHINE", "notsure": "NOTSURE"}[o]
            acause = sc.amd_cause or {"HUMAN": "HUMAN-800-800", "MACHINE": "MAXWORDS-3-2",
                                      "NOTSURE": "NOAUDIODATA-2500"}[status]
            await self.chan_event("VarSet", r, [("Variable", "AMDSTATUS"), ("Value", status)],
                                  privilege="dialplan,all")
            await self.chan_event("VarSet", r, [("Variable", "AMDCAUSE"), ("Value", acause)],
                                  privilege="dialplan,all")
            await self.broadcast([("Event", "UserEvent"), ("Privilege", "user,all"), *r.block(),
                                  ("UserEvent", "CatiAMD"), ("Status", status), ("Cause", acause)], chan=r)
            if status == "MACHINE":
                # GOSUB_RESULT=ABORT: Dial hangs up the callee and returns.
                await dial_end("ANSWER")
                await self.chan_event("SoftHangupRequest", r, [("Cause", "16")])
                await self._hangup_chan(r, 16)
                await self._hangup_pair(c1, c2, 16)
                return
        await dial_end("ANSWER")
        bridge = str(uuid.UUID(int=self._rnd.getrandbits(128)))
        r.bridge = c1.bridge = bridge
        await self.broadcast([("Event", "BridgeCreate"), ("Privilege", "call,all"), ("BridgeUniqueid", bridge),
                              ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"),
                              ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"), ("BridgeNumChannels", "0"),
                              ("BridgeVideoSourceMode", "none")])
        for n, c in enumerate((c1, r), start=1):
            await self.broadcast([("Event", "BridgeEnter"), ("Privilege", "call,all"), ("BridgeUniqueid", bridge),
                                  ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"),
                                  ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"),
                                  ("BridgeNumChannels", str(n)), ("BridgeVideoSourceMode", "none"), *c.block()])
        interrupted = await self.vsleep(sc.talk_s, call.hangup)
        cause = call.hangup_cause if interrupted else 16
        order = [r, c1, c2] if self._rnd.random() < 0.5 else [c1, r, c2]
        for c in order:
            await self.chan_event("SoftHangupRequest", c, [("Cause", "16")])
            await self._hangup_chan(c, cause if c is r else 16)
        await self.broadcast([("Event", "BridgeDestroy"), ("Privilege", "call,all"), ("BridgeUniqueid", bridge)])

    async def _hangup_pair(self, c1: Chan, c2: Chan, cause: int) -> None:
        await self.chan_event("SoftHangupRequest", c1, [("Cause", str(cause))])
        await self.chan_event("HangupRequest", c2, [("Cause", str(cause))])
        await self._hangup_chan(c1, cause)
        await self._hangup_chan(c2, cause)

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
    args = p.parse_args(argv)
    scripts = {}
    for item in args.script:
        num, _, outcome = item.partition("=")
        scripts[num] = outcome
    srv = AmiSimServer(args.username, args.secret, scripts=scripts, default=args.default,
                       time_scale=args.time_scale, split_packets=args.split_packets)
    host, port = srv.start(args.host, args.port)
    print(f"amisim listening on {host}:{port} (user {args.username}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
