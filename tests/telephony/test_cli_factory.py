"""backend_from_env and ``cati telephony check`` against the AMI simulator."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from cati.cli.telephony import telephony
from cati.telephony.ami import AmiBackend
from cati.telephony.factory import backend_from_env
from cati.telephony.simulated import SimulatedBackend
from cati.telephony.twilio_backend import TwilioBackend

from .fake_twilio import ACCOUNT, TOKEN, FakeTwilio


def ami_env(sim, **kw):
    env = {"CATI_TELEPHONY": "asterisk", "CATI_AMI_HOST": sim.host, "CATI_AMI_PORT": str(sim.port),
           "CATI_AMI_USERNAME": "cati", "CATI_AMI_SECRET": "good"}
    env.update(kw)
    return env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_factory_builds_each_backend(sim_factory):
    sim = sim_factory()
    for client in ("panoramisk", "asterisk-ami"):
        b = backend_from_env(ami_env(sim, CATI_AMI_CLIENT=client))
        try:
            assert isinstance(b, AmiBackend) and b.client_name == client and b.ping()["ping"] == "Pong"
        finally:
            b.close()
    sb = backend_from_env({}, connect=False)
    assert isinstance(sb, SimulatedBackend)
    tw = backend_from_env({"CATI_TELEPHONY": "twilio", "CATI_TWILIO_ACCOUNT_SID": ACCOUNT,
                           "CATI_TWILIO_AUTH_TOKEN": TOKEN, "CATI_TWILIO_FROM": "+8610000000"})
    assert isinstance(tw, TwilioBackend)


@pytest.mark.parametrize("env, message", [
    ({"CATI_TELEPHONY": "pbx"}, "CATI_TELEPHONY='pbx'"),
    ({"CATI_TELEPHONY": "asterisk", "CATI_AMI_SECRET": "x"}, "CATI_AMI_USERNAME is not set"),
    ({"CATI_TELEPHONY": "asterisk", "CATI_AMI_USERNAME": "u", "CATI_AMI_SECRET": "x", "CATI_AMI_PORT": "http"},
     "CATI_AMI_PORT='http'"),
    ({"CATI_TELEPHONY": "asterisk", "CATI_AMI_USERNAME": "u", "CATI_AMI_SECRET": "x", "CATI_AMI_CLIENT": "pyst2"},
     "CATI_AMI_CLIENT='pyst2'"),
    ({"CATI_TELEPHONY": "twilio", "CATI_TWILIO_ACCOUNT_SID": "AC1"}, "CATI_TWILIO_AUTH_TOKEN is not set"),
])
def test_factory_names_the_bad_variable(env, message):
    with pytest.raises(ValueError, match=message):
        backend_from_env(env, connect=False)


def test_check_ok(sim_factory, monkeypatch):
    sim = sim_factory()
    for k, v in ami_env(sim).items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(telephony, ["check"])
    assert r.exit_code == 0, r.output
    assert "version: 11.0.0" in r.output and "ping: Pong" in r.output and "OK" in r.output
    assert "good" not in r.output  # the secret is never printed


def test_check_refused_credentials(sim_factory, monkeypatch):
    sim = sim_factory()
    for k, v in ami_env(sim, CATI_AMI_SECRET="wrong", CATI_AMI_CLIENT="asterisk-ami").items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(telephony, ["check"])
    assert r.exit_code == 2 and "refused the credentials" in r.output


def test_check_unreachable(monkeypatch):
    monkeypatch.setenv("CATI_TELEPHONY", "asterisk")
    monkeypatch.setenv("CATI_AMI_PORT", str(free_port()))
    monkeypatch.setenv("CATI_AMI_USERNAME", "cati")
    monkeypatch.setenv("CATI_AMI_SECRET", "good")
    r = CliRunner().invoke(telephony, ["check"])
    assert r.exit_code == 2 and "unreachable" in r.output


def test_check_config_error_and_twilio(monkeypatch):
    monkeypatch.setenv("CATI_TELEPHONY", "twilio")
    monkeypatch.delenv("CATI_TWILIO_ACCOUNT_SID", raising=False)
    r = CliRunner().invoke(telephony, ["check"])
    assert r.exit_code == 2 and "CATI_TWILIO_ACCOUNT_SID is not set" in r.output
    fake = FakeTwilio().start()
    try:
        for k, v in {"CATI_TWILIO_ACCOUNT_SID": ACCOUNT, "CATI_TWILIO_AUTH_TOKEN": TOKEN,
                     "CATI_TWILIO_FROM": "+8610000000", "CATI_TWILIO_API_BASE": fake.base_url}.items():
            monkeypatch.setenv(k, v)
        r = CliRunner().invoke(telephony, ["check"])
        assert r.exit_code == 0 and "status: active" in r.output
        monkeypatch.setenv("CATI_TWILIO_AUTH_TOKEN", "bad-token")
        r = CliRunner().invoke(telephony, ["check"])
        assert r.exit_code == 2 and "401" in r.output
    finally:
        fake.stop()


def test_worker_command_outside_asterisk_and_unreachable(app, monkeypatch):
    monkeypatch.setenv("CATI_TELEPHONY", "simulated")
    r = CliRunner().invoke(telephony, ["worker"], obj={"app": app})
    assert r.exit_code == 0 and "no event worker needed" in r.output
    monkeypatch.setenv("CATI_TELEPHONY", "asterisk")
    monkeypatch.setenv("CATI_AMI_PORT", str(free_port()))
    monkeypatch.setenv("CATI_AMI_USERNAME", "cati")
    monkeypatch.setenv("CATI_AMI_SECRET", "good")
    r = CliRunner().invoke(telephony, ["worker"], obj={"app": app})
    assert r.exit_code == 2 and "unreachable" in r.output
