"""Flask extensions created without an app (bound in ``cati.web.register_blueprints``)."""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
