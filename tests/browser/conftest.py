"""Browser tests: the app served by gunicorn in a subprocess on a free localhost port (SQLite file database),
driven by Playwright with Debian's chromium, headless."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import Role
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
STUDY_FILE = ROOT / "config" / "studies" / "csat_contact_center.yaml"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", "/tmp/console-screens"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_timezone(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    h = 14 - now.hour
    return "Etc/GMT" if h == 0 else (f"Etc/GMT-{h}" if h > 0 else f"Etc/GMT+{-h}")


class Server:
    """gunicorn serving ``tests.browser.serve_app:build()``; :meth:`kill` is a hard SIGKILL of its process
    group (master and worker), like a crashed server."""

    def __init__(self, db_url: str, instance: Path, *, threads: int = 8):
        self.threads = threads  # each open call's event stream holds a thread while the call lasts
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")},
                    "CATI_DATABASE_URL": db_url, "CATI_INSTANCE_PATH": str(instance),
                    "CATI_SECRET_KEY": "browser-test-secret", "CATI_TELEPHONY": "simulated"}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        Path(self.env["CATI_INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True)
        self.log = open(Path(self.env["CATI_INSTANCE_PATH"]) / f"gunicorn-{time.time():.0f}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(self.threads), "-w", "1", "--graceful-timeout",
             "1", "-b", f"127.0.0.1:{self.port}", "tests.browser.serve_app:build()"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError("server did not come up in 30 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


@pytest.fixture
def site(tmp_path):
    """A migrated SQLite database with the default study, one enterprise with 6 callable cases and an
    interviewer (ann / password-123); the server running on it."""
    db_url = f"sqlite:///{tmp_path / 'cati.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    from cati.services.studies import install_study

    tz = open_timezone()
    with transaction(factory) as s:
        study = install_study(s, STUDY_FILE)
        ent = factories.enterprise(s, study, name="招商银行")
        ids = factories.cases(s, study, ent, 6, timezone=tz,
                              next_call_at=datetime.now(UTC) - timedelta(minutes=5))
        factories.user(s, Role.INTERVIEWER, username="ann", display_name="王芳", extension="8001")
    server = Server(db_url, tmp_path / "instance")
    server.start()
    yield {"server": server, "factory": factory, "case_ids": ids, "tz": tz}
    server.stop()
    engine.dispose()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
