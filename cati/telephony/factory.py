"""Build the configured telephony backend from the validated settings (``cati.config``: the variables below are
read there, from the environment; secrets never from a settings file).

=====================  ===========================================================================
variable               meaning
=====================  ===========================================================================
CATI_TELEPHONY         ``asterisk`` | ``twilio`` | ``simulated`` (default ``simulated``)
CATI_AMI_HOST          AMI host (default 127.0.0.1)
CATI_AMI_PORT          AMI port (default 5038)
CATI_AMI_USERNAME      AMI user (manager.conf section), required for asterisk
CATI_AMI_SECRET        its secret, required for asterisk
CATI_AMI_CLIENT        ``panoramisk`` (default) | ``asterisk-ami``
CATI_AMI_INTERVIEWER_CHANNEL  interviewer leg template (default ``Local/{ext}@cati-interviewer/n``)
CATI_AMI_DIAL_CONTEXT  context that Dial()s the respondent (default ``cati-dialout``)
CATI_AMI_PBXES         several PBXs: ``name host:port extensions; …`` (see :mod:`cati.telephony.multipbx`)
CATI_AMI_SECRETS       per-PBX secrets ``name=secret,…`` (else CATI_AMI_SECRET for all)
CATI_TWILIO_ACCOUNT_SID, CATI_TWILIO_AUTH_TOKEN  Twilio credentials, required for twilio
CATI_TWILIO_FROM       caller id (a Twilio number or verified caller id), required for twilio
CATI_PUBLIC_URL        public base URL of this app (Twilio status callbacks go to …/webhooks/twilio)
CATI_TWILIO_API_BASE   send REST calls elsewhere than api.twilio.com (tests, mocks)
=====================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .base import TelephonyBackend

if TYPE_CHECKING:
    from cati.config import TelephonySettings

BACKENDS = ("asterisk", "twilio", "simulated")


def _need(value, name: str, why: str) -> str:
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    value = (value or "").strip()
    if not value:
        raise ValueError(f"{name} is not set (needed for {why}) / 未设置环境变量 {name}")
    return value


def backend_from_env(environ: Mapping[str, str] | None = None, *, connect: bool = True,
                     events: bool = True, pbx: str | None = None) -> TelephonyBackend:
    """The backend the settings name (``CATI_TELEPHONY`` and its variables, through :mod:`cati.config`).

    ``environ`` replaces the process environment (tests). Raises ``ValueError`` naming the missing or malformed
    variable, and :class:`~cati.telephony.base.TelephonyError` when an Asterisk server is unreachable or refuses
    the credentials (``connect=True``). ``events=False`` gives an action-only AMI connection (web workers); one
    ``cati telephony worker`` process then stores the events. With ``CATI_AMI_PBXES`` (several PBXs,
    :mod:`cati.telephony.multipbx`) the result routes calls by extension; ``pbx`` names one PBX (its event worker).
    """
    from cati.config import load_settings

    settings = load_settings(environ=environ)
    return backend_from_settings(settings.telephony, connect=connect, events=events, pbx=pbx,
                                 public_url=settings.public_url)


def backend_from_settings(settings: TelephonySettings, *, connect: bool = True, events: bool = True,
                          pbx: str | None = None, public_url: str | None = None) -> TelephonyBackend:
    """The backend of validated :class:`cati.config.TelephonySettings` (see :func:`backend_from_env`);
    ``public_url`` is the app's (Twilio's status callbacks go there)."""
    kind = settings.backend
    ami = settings.ami
    if kind == "asterisk" and (ami.pbxes or "").strip():
        return _multi_pbx(settings, connect=connect, events=events, pbx=pbx)
    if pbx:
        raise ValueError(f"--pbx {pbx}: CATI_AMI_PBXES is not set (a single PBX needs no name)")
    if kind == "simulated":
        from .simulated import SimulatedBackend

        backend = SimulatedBackend()
        if connect:
            backend.start_ticking()
        return backend
    if kind == "asterisk":
        from .ami import AmiBackend

        return AmiBackend(
            ami.host, ami.port,
            _need(ami.username, "CATI_AMI_USERNAME", "CATI_TELEPHONY=asterisk"),
            _need(ami.secret, "CATI_AMI_SECRET", "CATI_TELEPHONY=asterisk"),
            client=ami.client, interviewer_channel=ami.interviewer_channel, dial_context=ami.dial_context,
            connect=connect, events=events,
        )
    from .twilio_backend import TwilioBackend, local_http_client

    tw = settings.twilio
    return TwilioBackend(
        _need(tw.account_sid, "CATI_TWILIO_ACCOUNT_SID", "CATI_TELEPHONY=twilio"),
        _need(tw.auth_token, "CATI_TWILIO_AUTH_TOKEN", "CATI_TELEPHONY=twilio"),
        _need(tw.from_number, "CATI_TWILIO_FROM", "CATI_TELEPHONY=twilio"),
        callback_base=public_url or "",
        http_client=local_http_client(tw.api_base) if tw.api_base else None,
    )


def _multi_pbx(settings: TelephonySettings, *, connect: bool, events: bool, pbx: str | None) -> TelephonyBackend:
    from .ami import AmiBackend
    from .multipbx import MultiPbxBackend, parse_pbxes, parse_secrets

    ami = settings.ami
    specs = parse_pbxes(ami.pbxes or "")
    secrets = parse_secrets(ami.secrets.get_secret_value() if ami.secrets else None)
    username = _need(ami.username, "CATI_AMI_USERNAME", "CATI_TELEPHONY=asterisk")

    def make(spec):
        secret = secrets.get(spec.name) or _need(ami.secret, "CATI_AMI_SECRET", f"PBX {spec.name} (or CATI_AMI_SECRETS)")
        backend = AmiBackend(spec.host, spec.port, username, secret, connect=connect, events=events,
                             client=ami.client, interviewer_channel=ami.interviewer_channel,
                             dial_context=ami.dial_context)
        backend.name = f"asterisk:{spec.name}"  # attempts record their PBX; each worker reconciles its own
        return backend

    if pbx is not None:
        spec = next((s for s in specs if s.name == pbx), None)
        if spec is None:
            raise ValueError(f"--pbx {pbx}: not in CATI_AMI_PBXES ({', '.join(s.name for s in specs)})")
        return make(spec)
    return MultiPbxBackend(specs, make)
