"""Layered, validated configuration: defaults → file → ``CATI_*`` environment → explicit overrides.

Nothing is read at import time: :func:`load_settings` does the reading when an app or a CLI command starts.
Unknown keys are rejected at every layer, so a typo in a settings file or an environment variable name that
matches the ``CATI_`` prefix but no setting fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

# CATI_ variables that are not settings: the settings file's name, and values only the test suite and one-off
# CLI prompts read (an initial admin password is typed or passed once, never kept as a setting).
_FOREIGN_ENV = {
    "CATI_CONFIG", "CATI_TEST_POSTGRES_URL", "CATI_ADMIN_PASSWORD", "CATI_NEW_USER_PASSWORD", "CATI_CLAIM_THREADS",
    "CATI_CLAIMS_PER_THREAD",
}

#: The call centre's clock when no setting says otherwise (the one place this zone is written).
DEFAULT_CENTRE_TIMEZONE = "Asia/Shanghai"

#: Nested settings and the environment variables that set them (the names deployments already use).
_ENV_PATHS: dict[str, tuple[str, ...]] = {
    "CATI_TELEPHONY": ("telephony", "backend"),
    "CATI_AMI_HOST": ("telephony", "ami", "host"),
    "CATI_AMI_PORT": ("telephony", "ami", "port"),
    "CATI_AMI_USERNAME": ("telephony", "ami", "username"),
    "CATI_AMI_SECRET": ("telephony", "ami", "secret"),
    "CATI_AMI_CLIENT": ("telephony", "ami", "client"),
    "CATI_AMI_INTERVIEWER_CHANNEL": ("telephony", "ami", "interviewer_channel"),
    "CATI_AMI_DIAL_CONTEXT": ("telephony", "ami", "dial_context"),
    "CATI_AMI_PBXES": ("telephony", "ami", "pbxes"),
    "CATI_AMI_SECRETS": ("telephony", "ami", "secrets"),
    "CATI_TWILIO_ACCOUNT_SID": ("telephony", "twilio", "account_sid"),
    "CATI_TWILIO_AUTH_TOKEN": ("telephony", "twilio", "auth_token"),
    "CATI_TWILIO_FROM": ("telephony", "twilio", "from_number"),
    "CATI_TWILIO_API_BASE": ("telephony", "twilio", "api_base"),
    "CATI_CONSOLE_HEARTBEAT_SECONDS": ("console", "heartbeat_seconds"),
    "CATI_CONSOLE_PRESENCE_TIMEOUT_SECONDS": ("console", "presence_timeout_seconds"),
    "CATI_CONSOLE_ALERT_IDLE_MINUTES": ("console", "alert_idle_minutes"),
    "CATI_CONSOLE_ALERT_WRAPUP_MINUTES": ("console", "alert_wrapup_minutes"),
    "CATI_CONSOLE_ALERT_CALL_MINUTES": ("console", "alert_call_minutes"),
}
_ENV_OF_PATH = {path: name for name, path in _ENV_PATHS.items()}
#: Secrets come from the environment only: a settings file that holds one is refused.
_SECRET_PATHS = {("telephony", "ami", "secret"), ("telephony", "ami", "secrets"), ("telephony", "twilio", "auth_token"),
                 ("secret_key",)}


class AmiSettings(BaseModel):
    """Asterisk Manager Interface (``CATI_AMI_*``). Several PBXs: ``pbxes`` (see cati.telephony.multipbx)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=5038, gt=0, lt=65536)
    username: str | None = None
    secret: SecretStr | None = None
    client: Literal["panoramisk", "asterisk-ami"] = "panoramisk"
    interviewer_channel: str = "Local/{ext}@cati-interviewer/n"
    dial_context: str = "cati-dialout"
    pbxes: str | None = None
    secrets: SecretStr | None = None


class TwilioSettings(BaseModel):
    """Twilio (``CATI_TWILIO_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = None
    api_base: str | None = None  # send REST calls elsewhere (tests, mocks)


class TelephonySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["asterisk", "twilio", "simulated"] = "simulated"
    ami: AmiSettings = Field(default_factory=AmiSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)

    @field_validator("backend", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class ConsoleSettings(BaseModel):
    """The interviewer console's presence and the supervisor's alerts (``CATI_CONSOLE_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The open console says "still here" this often; the reply carries a supervisor's pause or sign-out.
    heartbeat_seconds: int = Field(default=5, ge=1, le=60)
    # No word from a console for this long: the interviewer is offline and their case goes back to the queue.
    presence_timeout_seconds: int = Field(default=45, ge=10, le=3600)
    # The supervisor's live table flags an interviewer ready this long without a case, in wrap-up, or on a call.
    alert_idle_minutes: float = Field(default=10, gt=0)
    alert_wrapup_minutes: float = Field(default=3, gt=0)
    alert_call_minutes: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _timeout_after_heartbeats(self) -> ConsoleSettings:
        if self.presence_timeout_seconds < 3 * self.heartbeat_seconds:
            raise ValueError("console.presence_timeout_seconds must be at least 3 heartbeats (a late beat is not "
                             "an absence)")
        return self


class Settings(BaseModel):
    """Application settings. Field names map to ``CATI_<NAME>`` environment variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_path: Path = Field(default_factory=lambda: Path.cwd() / "instance")
    database_url: str | None = None  # None → SQLite file under instance_path
    secret_key: str | None = None  # None → generated once and kept in instance_path/secret_key
    default_language: Literal["zh-CN", "en"] = "zh-CN"
    study_file: Path | None = None
    sql_echo: bool = False
    session_cookie_secure: bool = False
    login_rate_limit: int = 10  # failed logins per username+address per 15 minutes
    testing: bool = False
    telephony: TelephonySettings = Field(default_factory=TelephonySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    public_url: str | None = None  # public base URL of the app (Twilio callbacks; their signatures are checked on it)
    # The call centre's clock: supervisors' screens show times in it (respondents' own zones drive calling).
    centre_timezone: str = DEFAULT_CENTRE_TIMEZONE
    # The public web-survey pages (/s/…): requests per client address, and per link (per link and device on an
    # open enterprise link, which a whole call centre shares, often behind one address). Flask-Limiter syntax.
    cawi_rate_limit_ip: str = "600 per minute"
    cawi_rate_limit_token: str = "120 per minute"
    # Where the counters live: one process's memory by default (limits per worker); a shared store such as
    # redis://host:6379 makes them hold across the workers of `cati serve --workers N`.
    cawi_rate_limit_storage: str = "memory://"
    # Threads per worker of `cati serve --workers N` (gunicorn gthread). An open console call and a supervisor's
    # live table each hold a thread while open, so a worker needs more threads than the interviewers and
    # supervisors it serves (8 stalled the 11th page of a 10-interviewer shift in the browser test).
    serve_threads: int = Field(default=64, ge=1, le=1024)
    # CCSO audits: the largest evidence file a centre may upload (bytes; kept under instance_path/audit_evidence).
    audit_upload_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)

    @field_validator("centre_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:  # noqa: BLE001 - zoneinfo raises several kinds
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("cawi_rate_limit_ip", "cawi_rate_limit_token")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse_many

        try:
            parse_many(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a rate limit (e.g. '120 per minute' or '10/second')") from None
        return v

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return v

    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            return url
        return f"sqlite:///{(self.instance_path / 'cati.sqlite').resolve()}"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        self.instance_path.mkdir(parents=True, exist_ok=True)
        key_file = self.instance_path / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


class SettingsError(ValueError):
    """A settings layer holds an unknown key or an invalid value."""


def _set(out: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        out = out.setdefault(key, {})
    out[path[-1]] = value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = {f for f in Settings.model_fields if f not in ("telephony", "console")}
    for key, value in environ.items():
        if not key.startswith("CATI_") or key in _FOREIGN_ENV:
            continue
        if key in _ENV_PATHS:
            if value.strip() == "":
                continue  # an empty variable is an unset one
            _set(out, _ENV_PATHS[key], value)
            continue
        name = key[5:].lower()
        if name not in known:
            names = sorted({f"CATI_{k.upper()}" for k in known} | set(_ENV_PATHS))
            raise SettingsError(f"environment variable {key}: unknown setting (known: {', '.join(names)})")
        out[name] = value
    return out


def _secrets_in(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    found = []
    for key, value in data.items():
        path = (*prefix, key)
        if path in _SECRET_PATHS:
            found.append(".".join(path))
        elif isinstance(value, Mapping):
            found += _secrets_in(value, path)
    return found


def _explain(exc: ValidationError, env_data: Mapping[str, Any]) -> str:
    """Validation errors, naming the environment variable a bad value came from."""
    lines = []
    for err in exc.errors():
        path = tuple(str(p) for p in err["loc"])
        var = _ENV_OF_PATH.get(path) or (f"CATI_{path[0].upper()}" if len(path) == 1 else None)
        value = env_data
        for p in path:
            value = value.get(p) if isinstance(value, Mapping) else None
        where = f"{var}={value!r}" if var and value is not None else ".".join(path)
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Build the settings from all layers; later layers win."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = config_file or environ.get("CATI_CONFIG")
    if path:
        path = Path(path)
        try:
            file_data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        unknown = set(file_data) - set(Settings.model_fields)
        if unknown:
            raise SettingsError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
        secrets = _secrets_in(file_data)
        if secrets:
            raise SettingsError(f"{path}: {', '.join(secrets)}: secrets come from the environment only "
                                "(CATI_AMI_SECRET, CATI_AMI_SECRETS, CATI_TWILIO_AUTH_TOKEN, CATI_SECRET_KEY)")
        _merge(data, file_data)
    env_data = _from_env(environ)
    _merge(data, env_data)
    _merge(data, dict(overrides or {}))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, env_data)) from exc


def child_environment(overrides: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process of ours (the lab's Asterisk workers, test servers): this process's
    environment without its CATI_ settings, plus ``overrides`` — so a child gets exactly the settings given."""
    environ = os.environ if environ is None else environ
    return {**{k: v for k, v in environ.items() if not k.startswith("CATI_")}, **overrides}
