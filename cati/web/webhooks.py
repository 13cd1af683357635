"""Twilio callbacks (blueprint ``webhooks``, under ``/webhooks/twilio``).

Every request must carry a valid ``X-Twilio-Signature`` (HMAC of the exact URL Twilio requested plus
the sorted POST fields, keyed with the account's auth token): anything else gets 403. The auth token
is ``app.config["TWILIO_AUTH_TOKEN"]`` (falling back to the ``CATI_TWILIO_AUTH_TOKEN`` environment
variable). Behind a reverse proxy the URL we check must be the one Twilio signed: it is rebuilt from
``app.config["TWILIO_WEBHOOK_BASE_URL"]`` or the ``CATI_PUBLIC_URL`` environment variable
(``https://cati.example.com``) when either is set, else taken from the request.

Twilio posts forms without a CSRF token, so this blueprint must be exempt from CSRF protection
(``csrf.exempt(webhooks)`` in the app factory); the signature check replaces it.

Handling is idempotent: :func:`cati.telephony.dialer.apply_event` sets timestamps once and never moves
an attempt backwards, so repeated and out-of-order callbacks end in the same state.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select

from cati.db import db
from cati.models.calls import CallAttempt
from cati.telephony.dialer import apply_event
from cati.telephony.twilio_backend import twilio_status_event

log = logging.getLogger(__name__)

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")


def _signed_url() -> str:
    base = current_app.config.get("TWILIO_WEBHOOK_BASE_URL") or current_app.config["CATI_SETTINGS"].public_url
    if base:
        full = request.full_path if request.query_string else request.path
        return base.rstrip("/") + full
    return request.url


def verify_twilio_signature() -> None:
    """Abort with 403 unless the request is signed by Twilio with our auth token."""
    from twilio.request_validator import RequestValidator

    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        abort(403)
    if not RequestValidator(token).validate(_signed_url(), request.form, signature):
        log.warning("rejected Twilio webhook with a bad signature: %s", request.path)
        abort(403)


@webhooks.post("/status")
def call_status() -> Response:
    """Call progress: initiated / ringing / answered (in-progress) / completed, busy, no-answer, failed."""
    verify_twilio_signature()
    call_id = request.args.get("call_id")
    if not call_id:
        abort(400, "call_id missing from the callback URL")
    if request.args.get("leg", "respondent") == "interviewer":
        return Response(status=204)  # the interviewer's own leg: not an attempt fact
    event = twilio_status_event(call_id, request.form)
    if event is None:
        return Response(status=204)
    session = db.session
    attempt = apply_event(session, event)
    session.commit()
    backend = current_app.extensions.get("cati.telephony")
    if backend is not None and getattr(backend, "name", None) == "twilio":
        backend.hub.emit(event)  # live screens (interviewer console, supervisor wallboard)
    if attempt is None:
        log.warning("Twilio callback for unknown call %s", call_id)
    return Response(status=204)


@webhooks.post("/amd")
def amd_status() -> Response:
    """Asynchronous answering-machine detection result (``AnsweredBy``)."""
    return call_status()


@webhooks.post("/recording")
def recording_status() -> Response:
    """Recording finished: remember where it is (first report wins)."""
    verify_twilio_signature()
    call_id = request.args.get("call_id")
    url = request.form.get("RecordingUrl")
    if call_id and url and request.form.get("RecordingStatus", "completed") == "completed":
        session = db.session
        attempt = session.scalar(select(CallAttempt).where(CallAttempt.call_id == call_id))
        if attempt is not None and attempt.recording_uri is None:
            attempt.recording_uri = url[:500]
            session.commit()
    return Response(status=204)
