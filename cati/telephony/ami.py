"""Asterisk backend over the Asterisk Manager Interface (AMI).

Over 600 lines on purpose: the tracker (pure), the two client adapters and the backend must agree on every
header and event; they are read together when a real-server behaviour changes.

Layers
------
:func:`parse_ami_stream`
    bytes → list of message dicts (CRLF framing; used by the transcript replay tests).
:class:`AmiCallTracker`
    pure state machine: AMI messages in, :class:`~cati.telephony.base.CallEvent` out, correlated by
    ``Linkedid`` (= our ChannelId on every leg of the call, including legs created by ``Dial()``).
:class:`PanoramiskAdapter` / :class:`AsteriskAmiAdapter`
    the two client libraries behind one small interface (connect+login, send an action, events,
    disconnect notification), each with its known faults guarded.
:class:`AmiBackend`
    the :class:`~cati.telephony.base.TelephonyBackend`: async Originate, hangup, MixMonitor,
    ChanSpy, keep-alive pings, reconnect with backoff and reconciliation via CoreShowChannels.

Dialplan contract (``config/asterisk/extensions.conf``): we originate the *interviewer* leg
``Local/<ext>@cati-interviewer`` with ``ChannelId=<call id>`` into ``cati-dialout,<number>,1``, which
``Dial()``s the respondent with ``U(cati-amd)``. Because the respondent is reached by ``Dial()``,
busy / no answer / congestion are observable (DialEnd + the callee's Hangup cause); a bare
Originate into the respondent would show none of that.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .base import (
    ABANDONED,
    ANSWERED,
    CONNECTED,
    ENDED,
    PLACED,
    RINGING,
    CallEvent,
    TelephonyBackend,
    TelephonyError,
    amd_kind,
    cause_from_dial_status,
    hangup_cause_text,
    mask_number,
    originate_reason_text,
)

log = logging.getLogger(__name__)

Message = dict  # header -> str (or list[str] for repeated headers such as ChanVariable)


# ---------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------

def parse_ami_message(text: str) -> Message | None:
    """One AMI message (without the blank line) → dict; repeated headers become lists.

    The banner line (``Asterisk Call Manager/…``) and lines without ``:`` are skipped; header names
    keep their case (``Cause-txt``, ``UniqueID`` in Cdr) but lookups in the tracker use exact names.
    """
    msg: Message = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line or ":" not in line:
            continue
        k, _, v = line.partition(":")
        k = k.strip()
        v = v[1:] if v.startswith(" ") else v
        if k in msg:
            prev = msg[k]
            msg[k] = prev + [v] if isinstance(prev, list) else [prev, v]
        else:
            msg[k] = v
    if "Event" in msg or "Response" in msg:
        return msg
    return None


def parse_ami_stream(data: bytes) -> list[Message]:
    """Split a byte stream on blank lines (CRLF CRLF) into messages; tolerates LF-only framing."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    out = []
    for chunk in text.split("\n\n"):
        m = parse_ami_message(chunk)
        if m is not None:
            out.append(m)
    return out


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------
# Tracker
# ---------------------------------------------------------------------------------------------------

@dataclass
class _Track:
    call_id: str
    interviewer_first: bool
    amd: bool
    action_id: str | None = None
    ivr: set = field(default_factory=set)
    resp: set = field(default_factory=set)
    names: dict = field(default_factory=dict)   # uniqueid -> channel name
    pairs: dict = field(default_factory=dict)   # Local ;1 uniqueid -> ;2 uniqueid (LocalBridge)
    live: set = field(default_factory=set)
    seen: bool = False
    placed: bool = False
    ringing: bool = False
    answered: bool = False
    amd_status: str | None = None
    amd_cause: str | None = None
    amd_emitted: bool = False
    cause: int | None = None
    cause_text: str | None = None
    dial_status: str | None = None
    reason: int | None = None
    originate_done: bool = False
    originate_failed: bool = False
    ended: bool = False
    ended_reason_sent: bool = False
    backend_call_id: str | None = None
    phone: str | None = None            # uniqueid of the interviewer's phone leg (Dial from ;2)
    phone_status: str | None = None     # that Dial's status when it failed (BUSY, CHANUNAVAIL, NOANSWER)
    recording: str | None = None        # MIXMONITOR_FILENAME as the server reported it
    predictive: bool = False            # respondent-first: ;2 dials the respondent, ;1 waits in a team queue
    connected_to: str | None = None     # predictive: the interviewer extension the queue connected
    abandoned: bool = False             # predictive: nobody was free in time


def _member_extension(msg: Message) -> str | None:
    """The interviewer extension of a queue member (``MemberName`` as we add it, else from the interface
    ``Local/1001@cati-interviewer/n`` or ``PJSIP/1001``)."""
    name = (msg.get("MemberName") or msg.get("Name") or "").strip()  # QueueMember events say Name / Location
    if name.isdigit():
        return name
    m = re.match(r"^(?:Local|PJSIP|SIP)/([0-9]+)",
                 msg.get("Interface") or msg.get("Location") or msg.get("DestChannel") or "")
    return m.group(1) if m else (name or None)


class AmiCallTracker:
    """Fold AMI messages into normalised call events (pure; no I/O).

    Parameters
    ----------
    emit : called with each :class:`CallEvent`.
    clock : UTC now; used when a message has no ``Timestamp`` header.
    """

    def __init__(self, emit: Callable[[CallEvent], None], clock: Callable[[], datetime] | None = None, *,
                 adopt: bool = True, dial_context: str | None = "cati-dialout"):
        self.emit = emit
        self.adopt = adopt
        self.dial_context = dial_context
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tracks: dict[str, _Track] = {}
        self._by_uid: dict[str, str] = {}
        self._by_action: dict[str, str] = {}
        self._lock = threading.RLock()

    def register(self, call_id: str, *, interviewer_first: bool = True, amd: bool = False,
                 action_id: str | None = None, other_id: str | None = None, predictive: bool = False) -> None:
        with self._lock:
            t = _Track(call_id, interviewer_first and not predictive, amd, action_id, predictive=predictive)
            if not predictive:  # predictive: the respondent is the channel ;2 dials (DialBegin)
                (t.ivr if interviewer_first else t.resp).update({call_id, other_id or f"{call_id};2"})
            self.tracks[call_id] = t
            self._by_uid[call_id] = call_id
            self._by_uid[other_id or f"{call_id};2"] = call_id
            if action_id:
                self._by_action[action_id] = call_id

    def active_calls(self) -> list[str]:
        with self._lock:
            return [c for c, t in self.tracks.items() if not t.ended]

    def channel_name(self, call_id: str, uid: str) -> str | None:
        t = self.tracks.get(call_id)
        return t.names.get(uid) if t else None

    def interviewer_channel(self, call_id: str) -> str | None:
        """Name of the interviewer's ``;2`` Local leg (the one ChanSpy should target)."""
        t = self.tracks.get(call_id)
        if not t:
            return None
        return t.names.get(f"{call_id};2") or t.names.get(call_id)

    # -- helpers ------------------------------------------------------------------------------------
    def _at(self, msg: Message) -> datetime:
        ts = msg.get("Timestamp")
        if ts and "Event" in msg:
            try:
                return datetime.fromtimestamp(float(ts), UTC)
            except ValueError:
                pass
        return self.clock()

    def _ev(self, t: _Track, kind: str, at: datetime, raw: Message | None = None, **kw) -> None:
        ev = CallEvent(call_id=t.call_id, kind=kind, at=at, backend_call_id=t.backend_call_id,
                       recording=t.recording, raw=dict(raw or {}), **kw)
        self.emit(ev)

    def _find(self, msg: Message) -> _Track | None:
        for key in ("Linkedid", "DestLinkedid", "LocalOneLinkedid", "SpyeeLinkedid"):
            v = msg.get(key)
            if v and v in self.tracks:
                return self.tracks[v]
        for key in ("Uniqueid", "DestUniqueid", "LocalOneUniqueid", "UniqueID"):
            v = msg.get(key)
            if v and v in self._by_uid:
                return self.tracks.get(self._by_uid[v])
        aid = msg.get("ActionID")
        if aid and aid in self._by_action:
            return self.tracks.get(self._by_action[aid])
        return None

    # -- public -------------------------------------------------------------------------------------
    def placed(self, call_id: str, at: datetime | None = None) -> None:
        """The Originate was queued (respondent-first: the respondent is being dialled now)."""
        with self._lock:
            t = self.tracks.get(call_id)
            if t and not t.placed and not t.interviewer_first:
                t.placed = True
                self._ev(t, PLACED, at or self.clock())

    def fail(self, call_id: str, text: str, at: datetime | None = None) -> None:
        """End a call the backend lost track of (refused Originate, lost in a reconnect)."""
        with self._lock:
            t = self.tracks.get(call_id)
            if t is None or t.ended:
                return
            t.ended = True
            leg = "interviewer" if t.interviewer_first and not t.placed and t.dial_status is None else "respondent"
            reason = t.reason if (not t.interviewer_first or leg == "interviewer") else None
            # Lost calls end with a technical cause (41, temporary failure) unless a real one is known,
            # so no attempt stays "ringing" forever and the auto outcome is 3.16 when nobody answered.
            cause = t.cause or 41
            self._ev(t, ENDED, at or self.clock(), hangup_cause=cause, cause_text=text,
                     dial_status=t.dial_status, originate_reason=reason, leg=leg)

    def feed(self, msg: Message) -> None:
        with self._lock:
            self._feed(msg)

    def _feed(self, msg: Message) -> None:
        ev = msg.get("Event")
        if not ev:
            return
        t = self._find(msg)
        if t is None:
            t = self._adopt(msg)
            if t is None:
                return
        at = self._at(msg)
        uid = msg.get("Uniqueid")
        if ev == "Newchannel":
            t.seen = True
            t.live.add(uid)
            self._by_uid[uid] = t.call_id
            t.names[uid] = msg.get("Channel")
            return
        if ev == "LocalBridge":
            one, two = msg.get("LocalOneUniqueid"), msg.get("LocalTwoUniqueid")
            t.pairs[one] = two
            for group in (t.ivr, t.resp):
                if one in group:
                    group.add(two)
            self._by_uid[two] = t.call_id
            return
        if ev == "DialBegin":
            caller, dest = msg.get("Uniqueid"), msg.get("DestUniqueid")
            if t.predictive:
                # Only the ;2 half's Dial() in [cati-predictive-dial] reaches the respondent; the queue's calls
                # to interviewer members come from ;1 and are not the respondent.
                if caller == f"{t.call_id};2" and not t.resp:
                    t.resp.add(dest)
                    self._by_uid[dest] = t.call_id
                    t.names[dest] = msg.get("DestChannel")
                    t.backend_call_id = dest
                    if not t.placed:
                        t.placed = True
                        self._ev(t, PLACED, at, msg)
                return
            if t.interviewer_first and caller and caller != t.call_id and caller in t.ivr:
                # The interviewer leg's own Dial() of the phone (``;2`` in [cati-interviewer]): never the
                # respondent. Remember it: its failure is the interviewer's, not the case's.
                t.phone = dest
                t.names[dest] = msg.get("DestChannel")
                self._by_uid[dest] = t.call_id
                return
            if caller and t.interviewer_first and self._dials_respondent(t, caller, msg):
                t.resp.add(dest)
                if dest in t.pairs:  # a Local callee: its ;2 half carries the real cause
                    t.resp.add(t.pairs[dest])
                self._by_uid[dest] = t.call_id
                t.names[dest] = msg.get("DestChannel")
                if t.backend_call_id is None:
                    t.backend_call_id = dest
                if not t.placed:
                    t.placed = True
                    self._ev(t, PLACED, at, msg)
            return
        if ev == "Newstate":
            state = _int(msg.get("ChannelState"))
            if uid in t.resp and not t.ended:
                if state == 5 and not t.ringing and not t.answered:
                    t.ringing = True
                    self._ev(t, RINGING, at, msg)
                elif state == 6:
                    self._answer(t, at, msg)
            return
        if ev == "DialState":
            if msg.get("DestUniqueid") in t.resp and msg.get("DialStatus") == "RINGING" and not t.ringing \
                    and not t.answered and not t.ended:
                t.ringing = True
                self._ev(t, RINGING, at, msg)
            return
        if ev == "DialEnd":
            dest = msg.get("DestUniqueid")
            if dest and dest == t.phone and msg.get("DialStatus") != "ANSWER":
                t.phone_status = msg.get("DialStatus")
                return
            if dest in t.resp and (msg.get("Uniqueid") in t.ivr or not t.interviewer_first):
                status = msg.get("DialStatus")
                if t.dial_status is None or status in ("ANSWER", "ABORT"):
                    t.dial_status = status
                if status == "ANSWER":
                    self._answer(t, at, msg)
            return
        if ev == "VarSet":
            var, val = msg.get("Variable"), msg.get("Value")
            if var == "AMDSTATUS" and val:
                t.amd_status = val
                if t.amd_cause:
                    self._amd(t, at, msg)
            elif var == "AMDCAUSE" and val:
                t.amd_cause = val
                if t.amd_status:
                    self._amd(t, at, msg)
            elif var == "DIALSTATUS" and val and t.placed and t.dial_status != "ABORT" and (
                    uid == f"{t.call_id};2" if t.predictive else (uid == t.call_id or not t.interviewer_first)):
                # Dial()'s own verdict on the respondent (set by the originated ;1 leg in the dial context). It
                # overrides DialEnd's per-destination status (a rejected or unallocated number gives DialEnd
                # NOANSWER but DIALSTATUS CHANUNAVAIL in the lab), except ABORT: our AMD gosub stopped the Dial
                # (a machine, or a hang-up during detection), which says more than DIALSTATUS ANSWER.
                t.dial_status = val
            elif var == "DIALSTATUS" and val and val != "ANSWER" and t.interviewer_first and not t.placed \
                    and uid == f"{t.call_id};2" and t.phone_status is None:
                # The ;2 leg's Dial of the interviewer's phone failed. A phone with no contact (unregistered)
                # is never dialled at all: no DialBegin, only this CHANUNAVAIL.
                t.phone_status = val
            elif var == "MIXMONITOR_FILENAME" and val:
                t.recording = val
            return
        if ev == "AgentConnect" and t.predictive and t.connected_to is None and not t.abandoned:
            t.connected_to = _member_extension(msg)
            self._ev(t, CONNECTED, at, msg, interviewer_extension=t.connected_to)
            return
        if (ev == "QueueCallerAbandon" or (ev == "UserEvent" and msg.get("UserEvent") == "CatiAbandon")) \
                and t.predictive and t.connected_to is None and not t.abandoned:
            # Nobody was free within the connect time (the dialplan's CatiAbandon, before the message plays),
            # or the person hung up while waiting (QueueCallerAbandon): either way an abandoned call.
            t.abandoned = True
            self._ev(t, ABANDONED, at, msg)
            return
        if ev == "UserEvent" and msg.get("UserEvent") in ("CatiAMD", "AMDResult"):
            t.amd_status = t.amd_status or msg.get("Status")
            t.amd_cause = t.amd_cause or msg.get("Cause")
            if t.amd_status:
                self._amd(t, at, msg)
            return
        if ev == "OriginateResponse":
            t.originate_done = True
            t.reason = _int(msg.get("Reason"))
            success = msg.get("Response") == "Success"
            if not success:
                t.originate_failed = True
            if success and not t.interviewer_first and t.reason == 4:
                self._answer(t, at, msg)
            if t.ended:
                if not t.ended_reason_sent:
                    t.ended_reason_sent = True
                    self._end(t, at, msg, again=True)
                return
            if not success and not t.live:
                self._end(t, at, msg)
            return
        if ev == "Hangup":
            t.live.discard(uid)
            cause = _int(msg.get("Cause"))
            if uid in t.resp and cause and t.cause is None:
                t.cause = cause
                t.cause_text = msg.get("Cause-txt") or hangup_cause_text(cause)
            if t.seen and not t.live and not t.ended:
                if t.interviewer_first or t.originate_done:
                    self._end(t, at, msg)
                else:
                    self._end(t, at, msg)  # respondent-first: Reason may still follow; sent again then
            return

    def _dials_respondent(self, t: _Track, caller: str, msg: Message) -> bool:
        """Is this DialBegin the dialplan dialling the respondent?

        Only the originated leg itself (Uniqueid = our call id, the Local ``;1`` half) runs the dial context
        and ``Dial()``s the respondent; the ``;2`` half dials the interviewer's phone. A caller in the dial
        context counts too (a dialplan that reaches the respondent from another channel of the same call).
        """
        if caller == t.call_id:
            return True
        return bool(self.dial_context) and msg.get("Context") == self.dial_context and caller not in t.ivr

    def _adopt(self, msg: Message) -> _Track | None:
        """Start tracking a call placed by another process (web worker with events off).

        Our Originate sets ``CATI_CALL_ID=<call id>`` on the originated legs; its VarSet (or a
        ``ChanVariable: CATI_CALL_ID=…`` header) on a channel whose Linkedid is that id identifies a
        CATI call. The two Local halves are assumed alive from then on.
        """
        if not self.adopt:
            return None
        linked = msg.get("Linkedid")
        value = None
        if msg.get("Event") == "VarSet" and msg.get("Variable") == "CATI_CALL_ID":
            value = msg.get("Value")
        else:
            cv = msg.get("ChanVariable")
            for item in cv if isinstance(cv, list) else [cv] if cv else []:
                k, _, v = item.partition("=")
                if k == "CATI_CALL_ID":
                    value = v
        if not value or value != linked or value in self.tracks:
            return None
        self.register(value, interviewer_first=True)
        t = self.tracks[value]
        t.seen = True
        t.live.update({value, f"{value};2"})
        return t

    def _answer(self, t: _Track, at: datetime, msg: Message) -> None:
        if t.answered or t.ended:
            return
        t.answered = True
        self._ev(t, ANSWERED, at, msg)
        if t.amd_status and not t.amd_emitted:
            self._amd(t, at, msg)

    def _amd(self, t: _Track, at: datetime, msg: Message) -> None:
        if t.amd_emitted:
            return
        if t.amd_status.strip().upper() == "HANGUP":
            # The respondent hung up while AMD listened: no verdict to route on. The call ends (the
            # dialplan aborts the Dial) and the ended event carries AMDSTATUS=HANGUP for the dialer.
            t.amd_emitted = True
            return
        if not t.answered:
            self._answer(t, at, msg)
            if t.amd_emitted:
                return
        t.amd_emitted = True
        self._ev(t, amd_kind(t.amd_status), at, msg, amd_status=t.amd_status.upper(), amd_cause=t.amd_cause)

    def _end(self, t: _Track, at: datetime, msg: Message, again: bool = False) -> None:
        t.ended = True
        if t.originate_done:
            t.ended_reason_sent = True
        if t.amd_status and not t.amd_emitted:
            self._amd(t, at, msg)
        leg = "respondent"
        text = t.cause_text or (hangup_cause_text(t.cause) if t.cause is not None else None)
        if t.interviewer_first and not t.placed and t.dial_status is None:
            leg = "interviewer"
            phone = f"interviewer phone {t.phone_status}" if t.phone_status else None
            text = phone or text or f"interviewer leg failed: {originate_reason_text(t.reason) or 'hung up'}"
        elif text is None and t.reason is not None:
            text = originate_reason_text(t.reason)
        # Respondent-first: the Reason is about the respondent; interviewer-first it is the interviewer's.
        reason = t.reason if (not t.interviewer_first or leg == "interviewer") else None
        cause = cause_from_dial_status(t.cause, t.dial_status) if leg == "respondent" else t.cause
        if text is None and cause is not None:
            text = hangup_cause_text(cause)
        amd_status = t.amd_status.strip().upper() if t.amd_status else None
        self._ev(t, ENDED, at, msg, hangup_cause=cause, cause_text=text, dial_status=t.dial_status,
                 originate_reason=reason, leg=leg, amd_status=amd_status, amd_cause=t.amd_cause)


# ---------------------------------------------------------------------------------------------------
# Client adapters
# ---------------------------------------------------------------------------------------------------

class AmiAdapter:
    """What :class:`AmiBackend` needs from an AMI client library."""

    name = "abstract"

    def __init__(self, on_message: Callable[[Message], None], on_disconnect: Callable[[object], None]):
        self._on_message = on_message
        self._on_disconnect = on_disconnect

    def connect(self, host: str, port: int, username: str, secret: str, timeout: float, events: bool = True) -> dict:
        """Connect and log in; return facts (banner version). Raise TelephonyError on refusal."""
        raise NotImplementedError

    def send(self, action: dict, timeout: float) -> Message | list[Message]:
        """Send an action and wait for its response (list actions: [response, events…, complete])."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # Guard: a raising consumer must never reach the client library (panoramisk drops the TCP
    # connection, asterisk-ami's reader thread dies).
    def _deliver(self, msg: Message) -> None:
        try:
            self._on_message(msg)
        except Exception:  # noqa: BLE001
            log.exception("AMI event handler raised on %s", msg.get("Event"))

    def _lost(self, exc: object) -> None:
        try:
            self._on_disconnect(exc)
        except Exception:  # noqa: BLE001
            log.exception("AMI disconnect handler raised")


class PanoramiskAdapter(AmiAdapter):
    """panoramisk (asyncio) in a background thread with its own event loop.

    Guards: every event callback wrapped (a raising callback would close the connection in
    ``data_received``); panoramisk's own fixed-interval reconnect and its re-sending of
    unanswered actions after reconnect (a duplicate Originate would dial twice) are switched off —
    :class:`AmiBackend` reconnects with backoff and reconciles instead; Originate is sent with
    ``as_list=False`` so its ``OriginateResponse`` (which carries the ActionID) is dispatched as an
    event instead of being swallowed by the pending action.
    """

    name = "panoramisk"

    def __init__(self, on_message, on_disconnect):
        super().__init__(on_message, on_disconnect)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ami-panoramisk", daemon=True)
        self._thread.start()
        self._manager = None
        self._closing = False
        self._up = False

    def _run(self, coro, timeout: float):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError as exc:
            fut.cancel()
            raise TelephonyError("AMI action timed out / AMI 请求超时") from exc

    def connect(self, host, port, username, secret, timeout, events=True):
        from panoramisk import Manager

        adapter = self

        class GuardedManager(Manager):
            def connection_made(self, f):
                if f.cancelled() or f.exception() is not None:
                    return  # reported by our connect(); no built-in retry loop
                super().connection_made(f)

            def connection_lost(self, exc):
                self._connected = False
                if self.pinger:
                    self.pinger.cancel()
                    self.pinger = None
                self.awaiting_actions.clear()  # never re-send an Originate blindly
                fut = self.authenticated_future
                if fut is not None and not fut.done():
                    fut.set_exception(ConnectionError("AMI closed the connection during login"))
                if self is adapter._manager and adapter._up and not adapter._closing:
                    adapter._up = False
                    adapter._lost(exc)

            def dispatch(self, event):
                try:
                    return super().dispatch(event)
                except Exception:  # noqa: BLE001
                    log.exception("panoramisk dispatch failed")
                    return []

        def on_event(manager, event):
            msg = {k: v for k, v in event.items() if k != "content"}
            adapter._deliver(msg)

        async def go():
            m = GuardedManager(loop=self._loop, host=host, port=port, username=username, secret=secret,
                               events="on" if events else "off",
                               ping_delay=10**6, ping_interval=10**6, reconnect_timeout=10**6)
            m.register_event("*", on_event)
            self._manager = m
            try:
                await asyncio.wait_for(m.connect(), timeout)
            except OSError as exc:
                raise TelephonyError(f"AMI unreachable at {host}:{port}: {exc} / 无法连接 AMI") from exc
            except TimeoutError as exc:
                raise TelephonyError(f"AMI connect timeout at {host}:{port} / 连接 AMI 超时") from exc
            fut = m.authenticated_future
            if fut is None:
                raise TelephonyError("AMI login was not sent")
            try:
                resp = await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError as exc:
                raise TelephonyError(f"AMI at {host}:{port} did not answer the Login / AMI 未响应登录") from exc
            except ConnectionError as exc:
                raise TelephonyError(f"AMI at {host}:{port} closed the connection during login / "
                                     "AMI 在登录时断开") from exc
            if not resp.success:
                raise TelephonyError(
                    f"AMI refused the credentials for user {username!r}: {resp.message} / AMI 拒绝了用户名或密码")
            self._up = True
            return {"version": getattr(m.protocol, "version", None), "message": resp.message}

        try:
            return self._run(go(), timeout + 1)
        except TelephonyError:
            self.close_manager()
            raise

    def close_manager(self):
        m, self._manager = self._manager, None
        if m is not None:
            self._loop.call_soon_threadsafe(m.close)

    def send(self, action, timeout):
        m = self._manager
        if m is None or m.protocol is None or getattr(m.protocol, "closed", True):
            raise TelephonyError("AMI not connected / AMI 未连接")
        # Single-response actions panoramisk would otherwise wait on: Originate/Hangup/Ping, and QueueAdd, whose
        # "Added interface to queue" panoramisk takes for the start of an event list (a relic of old Asterisk).
        single = ("originate", "ping", "hangup", "queueadd", "queueremove", "queuepause")
        as_list = False if action.get("Action", "").lower() in single else None

        async def go():
            fut = m.send_action(dict(action), as_list=as_list)
            res = await asyncio.wait_for(fut, timeout)
            if isinstance(res, list):
                return [{k: v for k, v in r.items() if k != "content"} for r in res]
            return {k: v for k, v in res.items() if k != "content"}

        return self._run(go(), timeout + 1)

    def close(self):
        self._closing = True
        self.close_manager()
        time.sleep(0.05)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2)


def _patch_asterisk_ami() -> None:
    """asterisk-ami 0.1.7 calls ``traceback.print_exc()`` in ``FutureResponse.set_response`` without
    importing traceback; a raising response callback then kills the reader thread with NameError."""
    import asterisk.ami.response as resp_mod

    if not hasattr(resp_mod, "traceback"):
        resp_mod.traceback = traceback


class AsteriskAmiAdapter(AmiAdapter):
    """asterisk-ami (threads).

    Guards: the socket timeout (default 3 s) is removed after connecting - otherwise the first idle
    gap of 3 s raises ``socket.timeout`` in the reader thread, which dies silently while the client
    still looks connected; the missing ``import traceback`` is patched; ``send`` uses ``sendall``
    under a lock (the library's ``send`` may write partially and is not thread-safe); every
    listener is wrapped; list actions are collected by ActionID from the event stream.
    """

    name = "asterisk-ami"

    def __init__(self, on_message, on_disconnect):
        super().__init__(on_message, on_disconnect)
        _patch_asterisk_ami()
        self._client = None
        self._lock = threading.Lock()
        self._lists: dict[str, tuple[list, threading.Event]] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._up = False

    def connect(self, host, port, username, secret, timeout, events=True):
        from asterisk.ami import AMIClient
        from asterisk.ami.action import Action

        adapter = self

        class GuardedClient(AMIClient):
            def connect(self):
                sock = socket.create_connection((self._address, self._port), timeout=timeout)
                sock.settimeout(None)  # the library's 3 s socket timeout kills the reader when idle
                self._socket = sock
                self.finished = threading.Event()
                self._thread = threading.Thread(target=self.listen, name="ami-asterisk-ami", daemon=True)
                self._thread.start()

            def send(self, pack):
                with adapter._lock:
                    self._socket.sendall(bytearray(str(pack) + "\r\n", self.encoding))

            def listen(self):
                # The library reads the banner outside its try: a connection closed before the
                # banner raises StopIteration in the thread and nobody is told.
                try:
                    super().listen()
                except Exception as exc:  # noqa: BLE001
                    self.finished.set()
                    self._fire_on_disconnect(error=exc)

            def fire_recv_pack(self, pack):
                try:
                    super().fire_recv_pack(pack)
                except Exception:  # noqa: BLE001
                    log.exception("asterisk-ami failed on a packet")

        client = GuardedClient(address=host, port=port, timeout=timeout)

        def on_event(event, **_):
            msg: Message = {"Event": event.name}
            for k, v in event.keys.items():
                if isinstance(v, dict):  # ChanVariable parsed into a dict by the library
                    msg[k] = [f"{a}={b}" for a, b in v.items()]
                else:
                    msg[k] = v
            aid = msg.get("ActionID")
            if aid and aid in adapter._lists:
                items, done = adapter._lists[aid]
                items.append(msg)
                if event.name.endswith("Complete"):
                    done.set()
                return
            adapter._deliver(msg)

        def on_disconnect(source, error=None):
            if not adapter._up:
                # Closed during login: wake the waiting Login instead of letting it time out.
                for fut in list(source._futures.values()):
                    fut.response = None
                return
            if client is adapter._client and not adapter._closing:
                adapter._up = False
                adapter._lost(error)

        client.add_event_listener(on_event)
        client.add_listener(on_disconnect=on_disconnect)
        self._client = client
        try:
            client.connect()
        except OSError as exc:
            self._client = None
            raise TelephonyError(f"AMI unreachable at {host}:{port}: {exc} / 无法连接 AMI") from exc
        try:
            f = client.send_action(Action("Login", {"Username": username, "Secret": secret,
                                                    "Events": "on" if events else "off"}))
        except OSError as exc:
            self.close_client()
            raise TelephonyError(f"AMI at {host}:{port} closed the connection during login / AMI 在登录时断开") from exc
        # Poll rather than block in FutureResponse: a connection closed under us must not cost a full timeout.
        deadline = time.monotonic() + timeout
        while f._response is None and not client.finished.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        resp = f._response
        if resp is None and client.finished.is_set():
            self.close_client()
            raise TelephonyError(f"AMI at {host}:{port} closed the connection during login / AMI 在登录时断开")
        if resp is None:
            self.close_client()
            raise TelephonyError(f"AMI at {host}:{port} did not answer the Login / AMI 未响应登录")
        if resp.is_error():
            self.close_client()
            raise TelephonyError(
                f"AMI refused the credentials for user {username!r}: {resp.keys.get('Message')} "
                "/ AMI 拒绝了用户名或密码")
        self._up = True
        return {"version": client._ami_version, "message": resp.keys.get("Message")}

    def close_client(self):
        c, self._client = self._client, None
        if c is not None:
            try:
                c.disconnect()
            except Exception:  # noqa: BLE001
                pass

    def send(self, action, timeout):
        from asterisk.ami.action import Action

        c = self._client
        if c is None or c.finished is None or c.finished.is_set():
            raise TelephonyError("AMI not connected / AMI 未连接")
        keys = {}
        variables = {}
        name = action["Action"]
        for k, v in action.items():
            if k == "Action":
                continue
            if k == "Variable":
                for item in v if isinstance(v, list) else [v]:
                    a, _, b = item.partition("=")
                    variables[a] = b
            else:
                keys[k] = v
        aid = keys.setdefault("ActionID", f"aa-{next(self._ids)}")
        is_list = name.lower() in ("coreshowchannels", "status")
        if is_list:
            self._lists[aid] = ([], threading.Event())
        try:
            f = c.send_action(Action(name, keys, variables))
            resp = f.response
            if resp is None:
                raise TelephonyError(f"AMI action {name} timed out / AMI 请求超时")
            out: Message = {"Response": resp.status, **resp.keys}
            if resp.follows:
                out["Output"] = resp.follows
            if is_list and resp.status == "Success":
                items, done = self._lists[aid]
                if not done.wait(timeout):
                    raise TelephonyError(f"AMI list {name} incomplete / 列表未完成")
                return [out, *items]
            return out
        except OSError as exc:
            raise TelephonyError(f"AMI send failed: {exc}") from exc
        finally:
            self._lists.pop(aid, None)

    def close(self):
        self._closing = True
        self.close_client()


ADAPTERS = {"panoramisk": PanoramiskAdapter, "asterisk-ami": AsteriskAmiAdapter}


# ---------------------------------------------------------------------------------------------------
# Backend
# ---------------------------------------------------------------------------------------------------

class AmiBackend(TelephonyBackend):
    """Asterisk over AMI.

    Parameters
    ----------
    host, port, username, secret : AMI endpoint and user (secret from the environment).
    client : ``"panoramisk"`` (default) or ``"asterisk-ami"``.
    interviewer_channel : template of the interviewer leg, ``{ext}`` replaced.
    dial_context : dialplan context that Dial()s the respondent (exten = number).
    ping_interval : keep-alive period in seconds; a failed ping forces a reconnect.
    backoff : (first, max) reconnect delays in seconds, doubling.
    action_timeout : seconds to wait for any action's response.
    """

    name = "asterisk"

    def __init__(self, host: str = "127.0.0.1", port: int = 5038, username: str = "cati", secret: str = "",
                 *, client: str = "panoramisk", interviewer_channel: str = "Local/{ext}@cati-interviewer/n",
                 dial_context: str = "cati-dialout", ping_interval: float = 20.0,
                 backoff: tuple[float, float] = (0.5, 30.0), action_timeout: float = 10.0,
                 connect: bool = True, events: bool = True):
        super().__init__(threaded_events=True)
        if client not in ADAPTERS:
            raise ValueError(f"CATI_AMI_CLIENT: unknown AMI client {client!r}; expected one of {sorted(ADAPTERS)}")
        self.host, self.port, self.username, self._secret = host, int(port), username, secret
        self.client_name = client
        self.events_on = events  # False: actions only (web workers); one event worker stores events
        self.interviewer_channel = interviewer_channel
        self.dial_context = dial_context
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.action_timeout = action_timeout
        self.tracker = AmiCallTracker(self.hub.emit, dial_context=dial_context)
        self.connected = threading.Event()
        self.reconnects = 0
        self.info: dict = {}
        self._closed = threading.Event()
        self._adapter: AmiAdapter | None = None
        self._reconnect_lock = threading.Lock()
        self._reconnecting = False
        self._spies: dict[str, str] = {}
        self._listeners: list[Callable[[Message], None]] = []
        self._actions = itertools.count(1)
        self._pinger: threading.Thread | None = None
        # Spy legs never outlive the call: ChanSpy's E option ends them with the spied channel, and when this
        # process sees the call end it hangs up the spy legs it started (belt and braces).
        self.hub.subscribe(self._end_spies_of_ended_call)
        if connect:
            self.connect()

    def _end_spies_of_ended_call(self, event) -> None:
        if event.kind != ENDED:
            return
        for spy_id in [s for s, c in list(self._spies.items()) if c == event.call_id]:
            self._spies.pop(spy_id, None)
            try:
                self.end_spy(spy_id)
            except TelephonyError:
                pass

    # -- connection ---------------------------------------------------------------------------------
    def _new_adapter(self) -> AmiAdapter:
        return ADAPTERS[self.client_name](self._on_ami_message, self._on_disconnect)

    def _on_ami_message(self, msg: Message) -> None:
        self.tracker.feed(msg)
        for listener in list(self._listeners):
            listener(msg)

    def listen_raw(self, listener: Callable[[Message], None]) -> Callable[[], None]:
        """Also hand every AMI message to ``listener`` (diagnostics, the lab's checks); returns the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def connect(self) -> dict:
        """Connect and log in once (raises TelephonyError); starts the keep-alive thread."""
        adapter = self._new_adapter()
        try:
            info = adapter.connect(self.host, self.port, self.username, self._secret, self.action_timeout,
                                   events=self.events_on)
        except Exception:
            try:
                adapter.close()
            except Exception:  # noqa: BLE001
                pass
            raise
        self._adapter = adapter
        self.info = dict(info, client=self.client_name, host=self.host, port=self.port)
        self.connected.set()
        if self._pinger is None:
            self._pinger = threading.Thread(target=self._keepalive, name="ami-keepalive", daemon=True)
            self._pinger.start()
        return self.info

    def _on_disconnect(self, exc: object) -> None:
        if self._closed.is_set():
            return
        log.warning("AMI connection lost (%s); reconnecting", exc)
        self.connected.clear()
        self._start_reconnect()

    def _start_reconnect(self) -> None:
        with self._reconnect_lock:
            if self._reconnecting or self._closed.is_set():
                return
            self._reconnecting = True
        threading.Thread(target=self._reconnect_loop, name="ami-reconnect", daemon=True).start()

    def _reconnect_loop(self) -> None:
        delay, max_delay = self.backoff
        old = self._adapter
        self._adapter = None
        if old is not None:
            try:
                old.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            while not self._closed.is_set():
                try:
                    self.connect()
                    self.reconnects += 1
                    self.reconcile()
                    return
                except TelephonyError as exc:
                    log.warning("AMI reconnect failed: %s; retry in %.1fs", exc, delay)
                except Exception:  # noqa: BLE001
                    log.exception("AMI reconnect failed; retry in %.1fs", delay)
                if self._closed.wait(delay):
                    return
                delay = min(delay * 2, max_delay)
        finally:
            with self._reconnect_lock:
                self._reconnecting = False

    def reconcile(self) -> list[str]:
        """After (re)connecting: end every call in flight that Asterisk no longer has.

        Returns the call ids ended with a technical cause. Calls still present keep their state
        (their events resume on the new connection).
        """
        live = self.live_call_ids()
        lost = [c for c in self.tracker.active_calls() if c not in live]
        for c in lost:
            self.tracker.fail(c, "call lost while the AMI connection was down / AMI 断线期间通话丢失")
        return lost

    def _channel_from_server(self, call_id: str) -> str | None:
        """The interviewer's ``;2`` leg (else ``;1``) of a call this connection did not see (events off)."""
        names = {m.get("Uniqueid"): m.get("Channel") for m in self._channels()}
        return names.get(f"{call_id};2") or names.get(call_id)

    def live_call_ids(self) -> set[str]:
        """Linkedids (= our call ids) and Uniqueids of every channel Asterisk has now (CoreShowChannels)."""
        live: set[str] = set()
        for m in self._channels():
            live.add(m.get("Linkedid"))
            live.add(m.get("Uniqueid"))
        return live

    def live_legs(self, call_id: str) -> list[str]:
        """Channels of the call still up on the server: every channel whose Linkedid is the call id, plus the
        spy legs of supervisors monitoring it."""
        chans = self._channels()
        mine = {m.get("Channel") for m in chans if m.get("Linkedid") == call_id}
        spies = {s for s, c in self._spies.items() if c == call_id}
        # a spy leg belongs to the call while it spies on one of its channels (any process may have started it)
        spies |= {m.get("Linkedid") for m in chans if m.get("Application") == "ChanSpy"
                  and (m.get("ApplicationData") or "").partition(",")[0] in mine}
        return [m.get("Channel") for m in chans if m.get("Linkedid") == call_id or m.get("Linkedid") in spies]

    def _keepalive(self) -> None:
        while not self._closed.wait(self.ping_interval):
            if not self.connected.is_set():
                continue
            try:
                self._send({"Action": "Ping"}, timeout=min(5.0, self.action_timeout))
            except TelephonyError as exc:
                log.warning("AMI keep-alive ping failed (%s); reconnecting", exc)
                self.connected.clear()
                self._start_reconnect()

    def _send(self, action: dict, timeout: float | None = None):
        adapter = self._adapter
        if adapter is None or not self.connected.is_set():
            raise TelephonyError("AMI not connected / AMI 未连接")
        return adapter.send(action, timeout or self.action_timeout)

    @staticmethod
    def _check(resp, what: str) -> dict:
        if isinstance(resp, list):
            resp = resp[0]
        if resp.get("Response") not in ("Success", "Goodbye"):
            raise TelephonyError(f"AMI {what} failed: {resp.get('Message', resp.get('Response'))}")
        return resp

    # -- TelephonyBackend ---------------------------------------------------------------------------
    def place_call(self, call_id, to_e164, interviewer_extension, *, caller_id=None, record=False,
                   machine_detection=False, timeout_s=30):
        number = to_e164.strip()
        if not number or not all(ch.isdigit() or ch == "+" for ch in number):
            raise ValueError(f"place_call: number {mask_number(number)!r} is not digits/E.164")
        aid = f"cati-orig-{next(self._actions)}-{call_id[:8]}"
        self.tracker.register(call_id, interviewer_first=True, amd=machine_detection, action_id=aid)
        action = {
            "Action": "Originate",
            "ActionID": aid,
            "Channel": self.interviewer_channel.format(ext=interviewer_extension),
            "Context": self.dial_context,
            "Exten": number.lstrip("+"),
            "Priority": "1",
            "Async": "true",
            "ChannelId": call_id,
            "Timeout": str(30000),  # the interviewer's own phone must answer within 30 s
            "Variable": [f"CATI_CALL_ID={call_id}", f"CATI_RECORD={int(bool(record))}",
                         f"CATI_AMD={int(bool(machine_detection))}", f"CATI_TIMEOUT={int(timeout_s)}"],
        }
        if caller_id:
            action["CallerID"] = caller_id
        log.info("AMI originate call %s to %s via %s", call_id, mask_number(number), interviewer_extension)
        try:
            resp = self._send(action)
            self._check(resp, "Originate")
        except TelephonyError as exc:
            self.tracker.fail(call_id, f"originate refused: {exc}")
            raise
        self.tracker.placed(call_id)

    # -- predictive (respondent-first) dialing ----------------------------------------------------------
    #: Context whose ;2 half dials the respondent, and the one the ;1 half runs once a person answered.
    predictive_dial_context = "cati-predictive-dial"
    predictive_connect_context = "cati-predictive-connect"

    def place_predictive_call(self, call_id, to_e164, team_queue, *, caller_id=None, machine_detection=True,
                              timeout_s=30, connect_within_s=2, abandon_prompt=None):
        number = to_e164.strip()
        if not number or not all(ch.isdigit() or ch == "+" for ch in number):
            raise ValueError(f"place_predictive_call: number {mask_number(number)!r} is not digits/E.164")
        if not team_queue or not re.fullmatch(r"[A-Za-z0-9_.-]+", team_queue):
            raise ValueError(f"place_predictive_call: team queue {team_queue!r} is not a queue name")
        aid = f"cati-pred-{next(self._actions)}-{call_id[:8]}"
        self.tracker.register(call_id, predictive=True, amd=machine_detection, action_id=aid)
        action = {
            "Action": "Originate",
            "ActionID": aid,
            "Channel": f"Local/{number.lstrip('+')}@{self.predictive_dial_context}/n",
            "Context": self.predictive_connect_context,
            "Exten": "s",
            "Priority": "1",
            "Async": "true",
            "ChannelId": call_id,
            # ;1 answers only once the person answered and machine detection let the call through
            "Timeout": str((int(timeout_s) + 10) * 1000),
            "Variable": [f"CATI_CALL_ID={call_id}", f"CATI_AMD={int(bool(machine_detection))}",
                         f"CATI_TIMEOUT={int(timeout_s)}", f"CATI_QUEUE={team_queue}",
                         f"CATI_CONNECT_S={int(connect_within_s)}",
                         f"CATI_ABANDON_PROMPT={abandon_prompt or 'cati/abandon'}"],
        }
        if caller_id:
            action["CallerID"] = caller_id
        log.info("AMI predictive originate call %s to %s for queue %s", call_id, mask_number(number), team_queue)
        try:
            self._check(self._send(action), "Originate")
        except TelephonyError as exc:
            self.tracker.fail(call_id, f"originate refused: {exc}")
            raise

    def _member(self, extension: str) -> str:
        ext = str(extension).strip()
        if not ext.isdigit():
            raise ValueError(f"interviewer extension {extension!r} is not digits")
        return self.interviewer_channel.format(ext=ext)

    def join_team(self, extension, team_queue, *, paused=False, name=None):
        resp = self._send({"Action": "QueueAdd", "Queue": team_queue, "Interface": self._member(extension),
                           "MemberName": str(extension), "StateInterface": f"PJSIP/{extension}",
                           "Paused": "true" if paused else "false"})
        if resp.get("Response") != "Success" and "Already there" in (resp.get("Message") or ""):
            self.pause_in_team(extension, team_queue, paused)
            return
        self._check(resp, "QueueAdd")

    def pause_in_team(self, extension, team_queue, paused, *, reason=""):
        self._check(self._send({"Action": "QueuePause", "Queue": team_queue, "Interface": self._member(extension),
                                "Paused": "true" if paused else "false", "Reason": reason or ""}), "QueuePause")

    def leave_team(self, extension, team_queue):
        resp = self._send({"Action": "QueueRemove", "Queue": team_queue, "Interface": self._member(extension)})
        if resp.get("Response") != "Success" and "Not there" in (resp.get("Message") or ""):
            return  # signed out twice
        self._check(resp, "QueueRemove")

    def team_members(self, team_queue: str) -> list[dict]:
        """The queue's members as the PBX sees them: extension, paused, in call, calls taken."""
        res = self._send({"Action": "QueueStatus", "Queue": team_queue})
        out = []
        for m in res if isinstance(res, list) else []:
            if m.get("Event") == "QueueMember" and m.get("Queue") == team_queue:
                out.append({"extension": _member_extension(m), "paused": m.get("Paused") == "1",
                            "in_call": m.get("InCall") == "1", "calls_taken": int(m.get("CallsTaken") or 0),
                            "status": m.get("Status")})
        return out

    def hangup(self, call_id):
        resp = self._send({"Action": "Hangup", "Channel": call_id, "Cause": "16"})
        if resp.get("Response") != "Success" and resp.get("Message") == "No such channel":
            return  # already gone: hanging up twice is harmless
        self._check(resp, "Hangup")

    def start_recording(self, call_id, path):
        self._check(self._send({"Action": "MixMonitor", "Channel": call_id, "File": path, "Options": "b"}),
                    "MixMonitor")

    def stop_recording(self, call_id):
        self._check(self._send({"Action": "StopMixMonitor", "Channel": call_id}), "StopMixMonitor")

    #: ChanSpy options per monitoring mode: q quiet, E exit when the spied call ends, w whisper, B barge.
    SPY_OPTIONS = {"listen": "qE", "whisper": "qwE", "barge": "qBE"}

    def _spy(self, call_id: str, supervisor_extension: str, options: str) -> str:
        target = self.tracker.interviewer_channel(call_id) or self._channel_from_server(call_id)
        if target is None:
            raise TelephonyError(f"call {call_id} is not live on the telephony server / 通话不存在")
        # The spy leg's id names the supervisor, so that any process can find (and end) a supervisor's session
        # on the PBX itself: the PBX, not one web worker's memory, is the truth of who monitors what.
        spy_id = f"spy-{supervisor_extension}-{uuid.uuid4().hex[:16]}"
        resp = self._send({
            "Action": "Originate", "Channel": self.interviewer_channel.format(ext=supervisor_extension),
            "Application": "ChanSpy", "Data": f"{target},{options}", "Async": "true",
            "ChannelId": spy_id, "CallerID": f'"CATI supervisor" <{supervisor_extension}>',
        })
        self._check(resp, "ChanSpy originate")
        self._spies[spy_id] = call_id
        return spy_id

    def _channels(self) -> list[Message]:
        """Every channel the server has now (the CoreShowChannel events of one CoreShowChannels action)."""
        res = self._send({"Action": "CoreShowChannels"})
        return [m for m in (res if isinstance(res, list) else []) if m.get("Event") == "CoreShowChannel"]

    def monitors(self) -> list[dict]:
        """Every monitoring session on this PBX, read from its channels: the spy legs running ChanSpy."""
        chans = self._channels()
        call_of = {m.get("Channel"): m.get("Linkedid") for m in chans}
        modes = {v: k for k, v in self.SPY_OPTIONS.items()}
        out = []
        for m in chans:
            uid = m.get("Uniqueid") or ""
            if not uid.startswith("spy-") or m.get("Application") != "ChanSpy":
                continue
            target, _, options = (m.get("ApplicationData") or "").partition(",")
            ext = uid.split("-")[1]
            out.append({"supervisor_extension": ext, "call_id": call_of.get(target) or self._spies.get(uid),
                        "mode": modes.get(options, options), "leg": uid})
        return out

    def stop_monitor(self, supervisor_extension: str) -> int:
        """Hang up every spy leg of this supervisor on the PBX (whoever started it)."""
        prefix = f"spy-{supervisor_extension}-"
        legs = {(m.get("Uniqueid") or "").split(";")[0] for m in self._channels()
                if (m.get("Uniqueid") or "").startswith(prefix)}
        for leg in legs:
            self.end_spy(leg)
        return len(legs)

    def end_spy(self, leg: str) -> None:
        resp = self._send({"Action": "Hangup", "Channel": leg, "Cause": "16"})
        if resp.get("Response") != "Success" and resp.get("Message") == "No such channel":
            return
        self._check(resp, "Hangup spy leg")

    def listen(self, call_id, supervisor_extension):
        return self._spy(call_id, supervisor_extension, "qE")

    def whisper(self, call_id, supervisor_extension):
        return self._spy(call_id, supervisor_extension, "qwE")

    def barge(self, call_id, supervisor_extension):
        return self._spy(call_id, supervisor_extension, "qBE")

    def ping(self):
        resp = self._check(self._send({"Action": "Ping"}), "Ping")
        return dict(self.info, ping=resp.get("Ping"), server_time=resp.get("Timestamp"))

    def close(self):
        self._closed.set()
        adapter, self._adapter = self._adapter, None
        self.connected.clear()
        if adapter is not None:
            try:
                adapter.send({"Action": "Logoff"}, 2)
            except Exception:  # noqa: BLE001
                pass
            adapter.close()
        self.hub.drain(2.0)
        self.hub.close()
