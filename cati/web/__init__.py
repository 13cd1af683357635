"""Web layer: thin blueprints (parse → one service call → render)."""

from __future__ import annotations

from flask import Flask, jsonify


def register_blueprints(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        from sqlalchemy import text

        from cati.db import db

        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok")
