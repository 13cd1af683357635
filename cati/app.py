"""The Flask application factory. The app exists only through :func:`create_app`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from .config import Settings, load_settings
from .db import db


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask(__name__, instance_path=str(settings.instance_path.resolve()), instance_relative_config=True)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    app.config.update(
        CATI_SETTINGS=settings,
        SECRET_KEY=settings.resolved_secret_key(),
        SQLALCHEMY_DATABASE_URI=settings.resolved_database_url(),
        SQL_ECHO=settings.sql_echo,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        DEFAULT_LANGUAGE=settings.default_language,
    )
    db.init_app(app)
    from . import web
    from .web import admin, analyst, audit, auth, cawi, interviewer, supervisor, webhooks

    # Every blueprint of the app, in one place.
    for blueprint in (auth.bp, interviewer.bp, supervisor.bp, analyst.bp, admin.bp, webhooks.webhooks, cawi.bp,
                      cawi.manage, audit.bp):
        app.register_blueprint(blueprint)
    web.init_app(app)
    return app
