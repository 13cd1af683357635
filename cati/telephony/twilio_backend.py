"""Twilio backend: REST calls through the official SDK, status callbacks turned into call events.

Call flow (one named conference per attempt, named by our call id):

1. the interviewer's leg: ``calls.create(to=<interviewer>, twiml=<Dial><Conference>call_id…)`` with
   ``startConferenceOnEnter`` and ``endConferenceOnExit`` (when the interviewer leaves, the call ends);
2. the respondent's leg: ``calls.create(to=<respondent>, twiml=<Dial><Conference>call_id…)`` with
   ``status_callback`` + ``status_callback_event=[initiated, ringing, answered, completed]``,
   ``machine_detection``, ``timeout`` and ``record``.

Supervisors join the same conference through the Participants API (which accepts the conference's
friendly name): *listen* = muted participant, *whisper* = ``coaching`` the interviewer's call,
*barge* = an unmuted participant.

Callbacks reach :mod:`cati.web.webhooks`, which verifies ``X-Twilio-Signature`` and calls
:func:`twilio_status_event` to build the :class:`~cati.telephony.base.CallEvent`; storing it is
idempotent (:func:`cati.telephony.dialer.apply_event`), so repeated or out-of-order callbacks end in
the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from .base import (
    ANSWERED,
    ENDED,
    PLACED,
    RINGING,
    CallEvent,
    TelephonyBackend,
    TelephonyError,
    amd_kind,
    hangup_cause_text,
    mask_number,
    normalise_amd_status,
)

log = logging.getLogger(__name__)

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]

#: SIP final response → Q.850 cause (RFC 3398 §8.2.6.1), for ``failed`` calls.
SIP_TO_Q850 = {
    403: 21, 404: 1, 410: 22, 480: 18, 484: 28, 486: 17, 487: 127, 488: 65, 500: 41, 502: 27, 503: 34,
    600: 17, 603: 21, 604: 1,
}

#: Twilio final CallStatus → (Q.850 cause, dial status in Asterisk's words).
FINAL_STATUS = {
    "completed": (16, "ANSWER"),
    "busy": (17, "BUSY"),
    "no-answer": (19, "NOANSWER"),
    "canceled": (None, "CANCEL"),
    "failed": (None, "CHANUNAVAIL"),
}


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def twilio_status_event(call_id: str, params: Mapping[str, str], *, now: datetime | None = None) -> CallEvent | None:
    """Turn one Twilio status (or async AMD) callback into a call event.

    Parameters
    ----------
    call_id : our call id (carried in the callback URL's query string).
    params : the POSTed form (``CallSid``, ``CallStatus``, ``AnsweredBy``, ``SipResponseCode``,
        ``Timestamp``, ``CallDuration`` …).

    Returns
    -------
    CallEvent or None
        ``None`` for statuses that say nothing new (``queued``).

    Notes
    -----
    ``in-progress`` with ``AnsweredBy`` gives ``answered_human`` / ``answered_machine`` (fax →
    machine with amd_status FAX); without it ``answered``. ``failed`` takes its Q.850 cause from
    ``SipResponseCode`` (404 → 1 unallocated, 486 → 17 busy, 603 → 21 rejected …).
    """
    status = (params.get("CallStatus") or "").lower()
    at = _parse_time(params.get("Timestamp")) or now or datetime.now(UTC)
    sid = params.get("CallSid")
    raw = dict(params)
    answered_by = normalise_amd_status(params.get("AnsweredBy")) if params.get("AnsweredBy") else None
    if status in ("", "queued") and answered_by is None:
        return None
    if status == "initiated":
        return CallEvent(call_id, PLACED, at, backend_call_id=sid, raw=raw)
    if status == "ringing":
        return CallEvent(call_id, RINGING, at, backend_call_id=sid, raw=raw)
    if status in ("in-progress", "answered") or (answered_by and status not in FINAL_STATUS):
        if answered_by:
            return CallEvent(call_id, amd_kind(answered_by), at, backend_call_id=sid, amd_status=answered_by,
                             amd_cause=params.get("AnsweredBy"), raw=raw)
        return CallEvent(call_id, ANSWERED, at, backend_call_id=sid, raw=raw)
    if status in FINAL_STATUS:
        cause, dial = FINAL_STATUS[status]
        sip = params.get("SipResponseCode")
        if status == "failed":
            cause = SIP_TO_Q850.get(int(sip), 41) if sip and sip.isdigit() else 41
        return CallEvent(call_id, ENDED, at, backend_call_id=sid, hangup_cause=cause,
                         cause_text=f"twilio {status}" + (f" (SIP {sip})" if sip else "") +
                         (f": {hangup_cause_text(cause)}" if cause is not None else ""),
                         dial_status=dial, amd_status=answered_by, raw=raw)
    log.warning("twilio: unknown CallStatus %r for call %s", status, call_id)
    return None


def conference_twiml(call_id: str, *, start_on_enter: bool = True, end_on_exit: bool = False,
                     muted: bool = False, record: bool = False) -> str:
    """TwiML that puts a leg into the conference named ``call_id``."""
    attrs = [
        f"startConferenceOnEnter={quoteattr(str(start_on_enter).lower())}",
        f"endConferenceOnExit={quoteattr(str(end_on_exit).lower())}",
        'beep="false"',
    ]
    if muted:
        attrs.append('muted="true"')
    if record:
        attrs.append('record="record-from-start"')
    return (f"<Response><Dial><Conference {' '.join(attrs)}>{escape(call_id)}</Conference></Dial></Response>")


class TwilioBackend(TelephonyBackend):
    """Twilio Programmable Voice.

    Parameters
    ----------
    account_sid, auth_token : credentials (from the environment).
    from_number : caller id: a Twilio number or verified caller id, genuine and returnable.
    callback_base : public base URL of this app, e.g. ``https://cati.example.com`` (webhooks live
        under ``/webhooks/twilio``).
    http_client : a ``twilio.http.HttpClient`` (tests point it at a local server).
    interviewer_endpoint : template for the interviewer's leg, ``{ext}`` replaced (``client:{ext}``
        for the browser voice SDK, ``sip:{ext}@pbx`` or a number).
    """

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, *, callback_base: str = "",
                 http_client=None, interviewer_endpoint: str = "client:{ext}", client=None):
        super().__init__()
        if not account_sid or not auth_token:
            raise ValueError("CATI_TWILIO_ACCOUNT_SID and CATI_TWILIO_AUTH_TOKEN must be set / 必须设置 Twilio 凭据")
        from twilio.rest import Client

        self.account_sid = account_sid
        self.from_number = from_number
        self.callback_base = callback_base.rstrip("/")
        self.interviewer_endpoint = interviewer_endpoint
        self.client = client or Client(account_sid, auth_token, http_client=http_client)
        self.calls: dict[str, dict[str, str]] = {}  # call_id -> {"respondent": sid, "interviewer": sid}
        self.participants: dict[str, str] = {}

    def _callback(self, endpoint: str, **query: str) -> str:
        return f"{self.callback_base}/webhooks/twilio/{endpoint}?{urlencode(query)}"

    def _endpoint(self, ext: str) -> str:
        if ext.startswith(("+", "client:", "sip:")) or ext.isdigit() and len(ext) > 6:
            return ext
        return self.interviewer_endpoint.format(ext=ext)

    def _wrap(self, what: str, fn):
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return fn()
        except TwilioRestException as exc:
            raise TelephonyError(f"Twilio {what} failed: HTTP {exc.status} code {exc.code}: {exc.msg}") from exc
        except TwilioException as exc:
            raise TelephonyError(f"Twilio {what} failed: {exc}") from exc
        except OSError as exc:
            raise TelephonyError(f"Twilio unreachable during {what}: {exc}") from exc

    def place_call(self, call_id, to_e164, interviewer_extension, *, caller_id=None, record=False,
                   machine_detection=False, timeout_s=30):
        if not to_e164.startswith("+") or not to_e164[1:].isdigit():
            raise ValueError(f"place_call: Twilio needs an E.164 number, got {mask_number(to_e164)!r}")
        src = caller_id or self.from_number
        log.info("twilio call %s to %s via %s", call_id, mask_number(to_e164), interviewer_extension)
        ivr = self._wrap("interviewer leg", lambda: self.client.calls.create(
            to=self._endpoint(interviewer_extension), from_=src,
            twiml=conference_twiml(call_id, start_on_enter=True, end_on_exit=True),
            status_callback=self._callback("status", call_id=call_id, leg="interviewer"),
            status_callback_event=["completed"], timeout=30,
        ))
        kw = {}
        if machine_detection:
            kw["machine_detection"] = "Enable"
        resp = self._wrap("respondent leg", lambda: self.client.calls.create(
            to=to_e164, from_=src,
            twiml=conference_twiml(call_id, start_on_enter=True, end_on_exit=True),
            status_callback=self._callback("status", call_id=call_id, leg="respondent"),
            status_callback_event=list(STATUS_EVENTS), status_callback_method="POST",
            timeout=int(timeout_s), record=bool(record), **kw,
        ))
        self.calls[call_id] = {"interviewer": ivr.sid, "respondent": resp.sid}

    def _sid(self, call_id: str, leg: str = "respondent") -> str:
        try:
            return self.calls[call_id][leg]
        except KeyError:
            raise TelephonyError(f"unknown call {call_id} / 未知通话") from None

    def hangup(self, call_id):
        for leg in ("respondent", "interviewer"):
            sid = self._sid(call_id, leg)
            # "completed" hangs up in-progress calls and cancels queued/ringing ones.
            self._wrap("hangup", lambda sid=sid: self.client.calls(sid).update(status="completed"))

    def start_recording(self, call_id, path):
        sid = self._sid(call_id)
        rec = self._wrap("start recording", lambda: self.client.calls(sid).recordings.create(
            recording_status_callback=self._callback("recording", call_id=call_id, file=path)))
        return rec.sid

    def stop_recording(self, call_id):
        sid = self._sid(call_id)
        self._wrap("stop recording",
                   lambda: self.client.calls(sid).recordings("Twilio.CURRENT").update(status="stopped"))

    def _join(self, call_id: str, supervisor_extension: str, **kw) -> str:
        if call_id not in self.calls:
            raise TelephonyError(f"unknown call {call_id} / 未知通话")
        p = self._wrap("supervisor join", lambda: self.client.conferences(call_id).participants.create(
            from_=self.from_number, to=self._endpoint(supervisor_extension), start_conference_on_enter=False,
            end_conference_on_exit=False, beep="false", **kw))
        self.participants[p.call_sid] = call_id
        return p.call_sid

    def listen(self, call_id, supervisor_extension):
        return self._join(call_id, supervisor_extension, muted=True, label="supervisor-listen")

    def whisper(self, call_id, supervisor_extension):
        return self._join(call_id, supervisor_extension, coaching=True,
                          call_sid_to_coach=self._sid(call_id, "interviewer"), label="supervisor-whisper")

    def barge(self, call_id, supervisor_extension):
        return self._join(call_id, supervisor_extension, muted=False, label="supervisor-barge")

    def ping(self):
        acct = self._wrap("account fetch", lambda: self.client.api.v2010.accounts(self.account_sid).fetch())
        return {"client": "twilio", "account_sid": acct.sid, "status": acct.status, "name": acct.friendly_name}

    def handle_status(self, call_id: str, params: Mapping[str, str], leg: str = "respondent") -> CallEvent | None:
        """Feed a verified callback into this backend's event stream (the webhook does this)."""
        if leg == "interviewer":
            return None
        ev = twilio_status_event(call_id, params)
        if ev is not None:
            self.hub.emit(ev)
        return ev


def local_http_client(base_url: str):
    """A TwilioHttpClient that sends every request to ``base_url`` instead of api.twilio.com (tests, mocks)."""
    from urllib.parse import urlsplit, urlunsplit

    from twilio.http.http_client import TwilioHttpClient

    target = urlsplit(base_url)

    class LocalTwilioHttpClient(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):
            parts = urlsplit(url)
            url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))
            return super().request(method, url, *args, **kwargs)

    return LocalTwilioHttpClient(timeout=10)
