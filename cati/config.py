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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Environment variables with the CATI_ prefix that belong to other parts (telephony backends read theirs
# directly from the environment, so secrets never pass through a settings file).
_FOREIGN_ENV = {
    "CATI_TELEPHONY", "CATI_AMI_HOST", "CATI_AMI_PORT", "CATI_AMI_USERNAME", "CATI_AMI_SECRET", "CATI_AMI_CLIENT",
    "CATI_TWILIO_ACCOUNT_SID", "CATI_TWILIO_AUTH_TOKEN", "CATI_TWILIO_FROM", "CATI_CONFIG",
    "CATI_TEST_POSTGRES_URL", "CATI_PUBLIC_URL", "CATI_AMI_INTERVIEWER_CHANNEL", "CATI_AMI_DIAL_CONTEXT",
    "CATI_TWILIO_API_BASE", "CATI_ADMIN_PASSWORD", "CATI_NEW_USER_PASSWORD", "CATI_CLAIM_THREADS",
    "CATI_CLAIMS_PER_THREAD", "CATI_AMI_PBXES", "CATI_AMI_SECRETS",
}


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


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = set(Settings.model_fields)
    for key, value in environ.items():
        if not key.startswith("CATI_") or key in _FOREIGN_ENV:
            continue
        name = key[5:].lower()
        if name not in known:
            raise SettingsError(f"environment variable {key}: unknown setting (known: {', '.join(sorted(known))})")
        out[name] = value
    return out


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
        data.update(file_data)
    data.update(_from_env(environ))
    data.update(overrides or {})
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(str(exc)) from exc
