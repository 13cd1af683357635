"""One validated Settings: telephony and the public URL are nested settings read from the usual CATI_*
variables; secrets only from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest

from cati.config import SettingsError, child_environment, load_settings


def test_telephony_settings_from_the_usual_variables():
    s = load_settings(environ={"CATI_TELEPHONY": "Asterisk", "CATI_AMI_PORT": "5039", "CATI_AMI_USERNAME": "cati",
                               "CATI_AMI_SECRET": "s3cret", "CATI_PUBLIC_URL": "https://cati.example/",
                               "CATI_TWILIO_AUTH_TOKEN": "zz9-twilio"})
    assert s.telephony.backend == "asterisk" and s.telephony.ami.port == 5039
    assert s.telephony.ami.secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s) and "zz9-twilio" not in repr(s.telephony)   # secrets never printed
    assert s.public_url == "https://cati.example/"


@pytest.mark.parametrize("env, message", [
    ({"CATI_AMI_PORT": "http"}, "CATI_AMI_PORT='http'"),
    ({"CATI_AMI_CLIENT": "pyst2"}, "CATI_AMI_CLIENT='pyst2'"),
    ({"CATI_TELEPHONY": "pbx"}, "CATI_TELEPHONY='pbx'"),
    ({"CATI_CENTRE_TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
    ({"CATI_AMI_HSOT": "x"}, "CATI_AMI_HSOT: unknown setting"),
])
def test_a_bad_value_names_its_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)


def test_secrets_come_from_the_environment_only(tmp_path):
    f = tmp_path / "cati.toml"
    f.write_text('[telephony.ami]\nhost = "10.0.0.5"\nsecret = "in-a-file"\n')
    with pytest.raises(SettingsError, match="telephony.ami.secret: secrets come from the environment only"):
        load_settings(environ={}, config_file=f)
    f.write_text('[telephony.ami]\nhost = "10.0.0.5"\n')
    s = load_settings(environ={"CATI_AMI_SECRET": "from-env"}, config_file=f)
    assert (s.telephony.ami.host, s.telephony.ami.secret.get_secret_value()) == ("10.0.0.5", "from-env")


def test_a_child_process_gets_exactly_the_settings_given():
    env = child_environment({"CATI_DATABASE_URL": "sqlite:///x"}, {"PATH": "/bin", "CATI_AMI_SECRET": "parent"})
    assert env == {"PATH": "/bin", "CATI_DATABASE_URL": "sqlite:///x"}


def test_serve_runs_gunicorn_with_the_configured_threads_per_worker(monkeypatch):
    """An open console call and a live table each hold a server thread: `cati serve --workers N` takes the thread
    count from the settings (CATI_SERVE_THREADS), not a fixed 8 that stalls a 10-interviewer shift."""
    import os

    from click.testing import CliRunner

    from cati.cli import main

    launched = {}
    monkeypatch.setenv("CATI_SERVE_THREADS", "48")
    def execvp(prog, args):  # the real one never returns: this process becomes gunicorn
        launched.update(prog=prog, args=args)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvp", execvp)
    result = CliRunner().invoke(main, ["serve", "--workers", "2", "--no-jobs"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    args = launched["args"]
    assert launched["prog"] == "gunicorn" and args[args.index("--threads") + 1] == "48"
    assert args[args.index("-w") + 1] == "2"
    assert load_settings(environ={}).serve_threads == 64
    with pytest.raises(SettingsError, match="CATI_SERVE_THREADS"):
        load_settings(environ={"CATI_SERVE_THREADS": "0"})
