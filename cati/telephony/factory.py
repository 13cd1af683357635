"""Build the configured telephony backend from the environment (never from committed files).

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

import os
from collections.abc import Mapping

from .base import TelephonyBackend

BACKENDS = ("asterisk", "twilio", "simulated")


def _need(env: Mapping[str, str], name: str, why: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ValueError(f"{name} is not set (needed for {why}) / 未设置环境变量 {name}")
    return value


def backend_from_env(environ: Mapping[str, str] | None = None, *, connect: bool = True,
                     events: bool = True, pbx: str | None = None) -> TelephonyBackend:
    """The backend named by ``CATI_TELEPHONY``, configured from ``environ`` (default ``os.environ``).

    Raises ``ValueError`` naming the missing or malformed variable, and
    :class:`~cati.telephony.base.TelephonyError` when an Asterisk server is unreachable or refuses
    the credentials (``connect=True``). ``events=False`` gives an action-only AMI connection (web
    workers); one ``cati telephony worker`` process then stores the events. With ``CATI_AMI_PBXES`` (several
    PBXs, :mod:`cati.telephony.multipbx`) the result routes calls by extension; ``pbx`` names one PBX (its
    event worker).
    """
    env = os.environ if environ is None else environ
    kind = (env.get("CATI_TELEPHONY") or "simulated").strip().lower()
    if kind not in BACKENDS:
        raise ValueError(f"CATI_TELEPHONY={kind!r} is not one of {', '.join(BACKENDS)}")
    if kind == "simulated":
        from .simulated import SimulatedBackend

        backend = SimulatedBackend()
        if connect:
            backend.start_ticking()
        return backend
    if kind == "asterisk" and (env.get("CATI_AMI_PBXES") or "").strip():
        return _multi_pbx(env, connect=connect, events=events, pbx=pbx)
    if pbx:
        raise ValueError(f"--pbx {pbx}: CATI_AMI_PBXES is not set (a single PBX needs no name)")
    if kind == "asterisk":
        from .ami import ADAPTERS, AmiBackend

        port_s = env.get("CATI_AMI_PORT") or "5038"
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ValueError(f"CATI_AMI_PORT={port_s!r} is not a TCP port")
        client = (env.get("CATI_AMI_CLIENT") or "panoramisk").strip()
        if client not in ADAPTERS:
            raise ValueError(f"CATI_AMI_CLIENT={client!r} is not one of {', '.join(sorted(ADAPTERS))}")
        return AmiBackend(
            env.get("CATI_AMI_HOST") or "127.0.0.1", int(port_s),
            _need(env, "CATI_AMI_USERNAME", "CATI_TELEPHONY=asterisk"),
            _need(env, "CATI_AMI_SECRET", "CATI_TELEPHONY=asterisk"),
            client=client,
            interviewer_channel=env.get("CATI_AMI_INTERVIEWER_CHANNEL") or "Local/{ext}@cati-interviewer/n",
            dial_context=env.get("CATI_AMI_DIAL_CONTEXT") or "cati-dialout",
            connect=connect, events=events,
        )
    from .twilio_backend import TwilioBackend, local_http_client

    api_base = env.get("CATI_TWILIO_API_BASE")
    return TwilioBackend(
        _need(env, "CATI_TWILIO_ACCOUNT_SID", "CATI_TELEPHONY=twilio"),
        _need(env, "CATI_TWILIO_AUTH_TOKEN", "CATI_TELEPHONY=twilio"),
        _need(env, "CATI_TWILIO_FROM", "CATI_TELEPHONY=twilio"),
        callback_base=env.get("CATI_PUBLIC_URL") or "",
        http_client=local_http_client(api_base) if api_base else None,
    )


def _ami_common(env: Mapping[str, str]) -> dict:
    from .ami import ADAPTERS

    client = (env.get("CATI_AMI_CLIENT") or "panoramisk").strip()
    if client not in ADAPTERS:
        raise ValueError(f"CATI_AMI_CLIENT={client!r} is not one of {', '.join(sorted(ADAPTERS))}")
    return {"client": client,
            "interviewer_channel": env.get("CATI_AMI_INTERVIEWER_CHANNEL") or "Local/{ext}@cati-interviewer/n",
            "dial_context": env.get("CATI_AMI_DIAL_CONTEXT") or "cati-dialout"}


def _multi_pbx(env: Mapping[str, str], *, connect: bool, events: bool, pbx: str | None) -> TelephonyBackend:
    from .ami import AmiBackend
    from .multipbx import MultiPbxBackend, parse_pbxes, parse_secrets

    specs = parse_pbxes(env["CATI_AMI_PBXES"])
    secrets = parse_secrets(env.get("CATI_AMI_SECRETS"))
    username = _need(env, "CATI_AMI_USERNAME", "CATI_TELEPHONY=asterisk")
    common = _ami_common(env)

    def make(spec):
        secret = secrets.get(spec.name) or _need(env, "CATI_AMI_SECRET", f"PBX {spec.name} (or CATI_AMI_SECRETS)")
        backend = AmiBackend(spec.host, spec.port, username, secret, connect=connect, events=events, **common)
        backend.name = f"asterisk:{spec.name}"  # attempts record their PBX; each worker reconciles its own
        return backend

    if pbx is not None:
        spec = next((s for s in specs if s.name == pbx), None)
        if spec is None:
            raise ValueError(f"--pbx {pbx}: not in CATI_AMI_PBXES ({', '.join(s.name for s in specs)})")
        return make(spec)
    return MultiPbxBackend(specs, make)
