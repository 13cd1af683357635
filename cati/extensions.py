"""Flask extensions created without an app (bound in ``cati.web.init_app``)."""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
