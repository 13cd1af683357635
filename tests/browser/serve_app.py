"""WSGI entry for the browser tests: the real app (settings from ``CATI_*`` environment variables) with the
console wired in and the simulated telephony backend on the real clock. Every number in the database is
scripted to be answered by a person after a short ring, so the tests don't wait 4–20 s per dial.

    gunicorn -k gthread --threads 8 -w 1 'tests.browser.serve_app:build()'
"""

from __future__ import annotations

from sqlalchemy import select


def build():
    from cati.app import create_app
    from cati.db import db
    from cati.models import CasePhone
    from cati.telephony.simulated import SimScript, SimulatedBackend
    from cati.web.interviewer import use_backend

    app = create_app()
    with app.app_context():
        with db.sessionmaker() as s:
            numbers = list(s.scalars(select(CasePhone.e164)))
    backend = SimulatedBackend(scripts={n: SimScript("human", ring_s=1.0, amd_s=0.3) for n in numbers})
    use_backend(app, backend)
    return app
