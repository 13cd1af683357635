"""Load test of the web survey (CAWI): N respondents answering the whole happiness questionnaire at once against
the app served by gunicorn on PostgreSQL (a temporary database, dropped afterwards).

Each respondent is a thread with its own ``requests.Session`` (its own cookie jar: its own device) that opens its
enterprise's open link, presses Start and answers every question with the planned answers of
``scoring.synthetic.make_happiness_responses``, reading each page for a think time first (default 2–8 s: faster
than the decks' 394 s per whole response, about 10 s a page). Respondents start spread over ``--ramp`` seconds.

Prints the answer-save latency (the POST of one answer, until its redirect arrives: that redirect is the
acknowledgement) p50/p95/p99, the page GETs, the errors, and the answers lost: every answer a client had
acknowledged is looked up afterwards in the database (its response found by the client's device cookie), and
one that is missing or stored with another value counts as lost.

All clients come from 127.0.0.1, so the per-address rate limit is raised for the run (``CATI_CAWI_RATE_LIMIT_IP``);
the per-link-and-device limit stays as configured.

    python scripts/load_cawi.py --respondents 500
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import requests
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cati.db import make_engine, make_sessionmaker  # noqa: E402
from cati.migrate import upgrade  # noqa: E402
from cati.models import Answer, Interview, InterviewStatus, WebResponse  # noqa: E402
from cati.simulation.cawi_wave import HAPPY_STUDY, _questions, form_for, setup_wave  # noqa: E402
from scoring.synthetic import make_happiness_responses  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(r'<form method="post" action="(/s/[^"]+)"')


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: list[str] = []
        self.acknowledged: dict[str, dict[str, object]] = {}   # device key → question → the form value sent
        self.completed = 0
        self.gave_up = 0

    def add(self, kind: str, ms: float) -> None:
        with self.lock:
            self.ms[kind].append(ms)

    def error(self, kind: str, note: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < 8:
                self.samples.append(f"{kind}: {note}")


def respondent(base: str, token: str, row, questions: dict, stats: Stats, think: tuple[float, float],
               delay: float, rng: random.Random) -> None:
    time.sleep(delay)
    http = requests.Session()
    acked: dict[str, object] = {}

    def call(kind: str, method: str, path: str, **kw):
        t = time.perf_counter()
        try:
            r = http.request(method, base + path, allow_redirects=False, timeout=60, **kw)
        except requests.RequestException as exc:
            stats.add(kind, 1000 * (time.perf_counter() - t))
            stats.error(kind, f"{path}: {type(exc).__name__}")
            return None
        stats.add(kind, 1000 * (time.perf_counter() - t))
        return r

    try:
        r = call("page", "GET", f"/s/{token}")
        if r is None or r.status_code != 200:
            stats.error("page", f"landing HTTP {getattr(r, 'status_code', '—')}")
            stats.gave_up += 1
            return
        r = call("start", "POST", f"/s/{token}/start", data={"csrf_token": CSRF.search(r.text).group(1)})
        if r is None or r.status_code != 303:
            stats.error("start", f"HTTP {getattr(r, 'status_code', '—')}")
            stats.gave_up += 1
            return
        location = r.headers["Location"]
        retries = 0
        while "/done" not in location:
            page = call("page", "GET", location)
            if page is None or page.status_code != 200:
                stats.error("page", f"{location}: HTTP {getattr(page, 'status_code', '—')}")
                retries += 1
                if retries > 3:
                    stats.gave_up += 1
                    return
                time.sleep(1)
                continue
            action = ACTION.search(page.text).group(1)
            code = action.rsplit("/", 1)[1]
            form = form_for(questions[code], row)
            time.sleep(rng.uniform(*think))
            r = call("answer", "POST", action, data={"csrf_token": CSRF.search(page.text).group(1), **form})
            if r is None or r.status_code != 303:
                stats.error("answer", f"{code}: HTTP {getattr(r, 'status_code', '—')}")
                retries += 1
                if retries > 3:
                    stats.gave_up += 1
                    return
                continue  # the page again (nothing acknowledged), as a person would
            if questions[code].get("type") != "info":
                acked[code] = form
            location = r.headers["Location"]
        call("page", "GET", location)
        with stats.lock:
            stats.completed += 1
    finally:
        device = http.cookies.get("cawi_device")
        with stats.lock:
            stats.acknowledged[device or f"no-device-{id(http)}"] = acked


def stored_matches(form: dict, value_code, value_text) -> bool:
    """Whether the stored answer is the one the form sent (single/rating code, multi codes, open text)."""
    if "prefer" in form:
        return value_code is not None or value_text is not None
    sent = form.get("value")
    if isinstance(sent, list):
        return value_text is not None and set(str(value_text).split(",")) == set(sent)
    if value_code is not None:
        return str(int(value_code)) == str(sent)
    return str(value_text) == str(sent)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--respondents", type=int, default=500)
    ap.add_argument("--enterprises", type=int, default=50)
    ap.add_argument("--think", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN", "MAX"),
                    help="seconds on a page before answering it")
    ap.add_argument("--ramp", type=float, default=20.0, help="respondents start spread over this many seconds")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--pg-url", default=os.environ.get("CATI_TEST_POSTGRES_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    admin_url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)

    print(f"setting up a temporary PostgreSQL database ({args.enterprises} enterprises, {args.respondents} "
          "respondents)…", flush=True)
    admin = make_engine(admin_url)
    name = f"cati_cawi_load_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    plan = make_happiness_responses(args.enterprises, args.respondents, seed=args.seed)
    _study_id, tokens, _ = setup_wave(make_sessionmaker(engine), plan)
    engine.dispose()
    import yaml

    questions = _questions(yaml.safe_load(HAPPY_STUDY.read_text(encoding="utf-8")))

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")},
           "CATI_DATABASE_URL": url, "CATI_INSTANCE_PATH": f"/tmp/cati-cawi-load-{name}",
           "CATI_SECRET_KEY": uuid.uuid4().hex, "CATI_CAWI_RATE_LIMIT_IP": "1000000 per minute"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:cati.gunicorn_conf", "-k", "gthread", "-w",
         str(args.workers), "--threads", str(args.threads), "--keep-alive", "75", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "cati.app:create_app()"],
        cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    stats = Stats()
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        rng = random.Random(args.seed)
        threads = [threading.Thread(target=respondent, daemon=True, args=(
            base, tokens[str(row["enterprise_id"])], row, questions, stats, tuple(args.think),
            rng.uniform(0, args.ramp), random.Random(i)))
            for i, (_, row) in enumerate(plan.iterrows())]
        load_before = os.getloadavg()
        print(f"{len(threads)} respondents answering (think {args.think[0]}–{args.think[1]} s, ramp {args.ramp} s)…",
              flush=True)
        started = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        by_device = dict(s.execute(select(WebResponse.device_key, WebResponse.interview_id)).all())
        stored: dict[int, dict[str, tuple]] = defaultdict(dict)
        for iid, code, vcode, vtext in s.execute(select(Answer.interview_id, Answer.question_code, Answer.value_code,
                                                        Answer.value_text)):
            stored[iid][code] = (vcode, vtext)
        completes = len(s.scalars(select(Interview.id).where(Interview.mode == "cawi",
                                                             Interview.status == InterviewStatus.COMPLETE)).all())
    engine.dispose()
    admin.dispose()
    if not args.keep_db:
        admin = make_engine(admin_url)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    acknowledged = lost = 0
    for device, acked in stats.acknowledged.items():
        answers = stored.get(by_device.get(device, -1), {})
        for code, form in acked.items():
            acknowledged += 1
            got = answers.get(code)
            if got is None or not stored_matches(form, *got):
                lost += 1

    print()
    print(f"{args.respondents} respondents on {args.enterprises} open links, gunicorn {args.workers} workers × "
          f"{args.threads} threads (gthread), PostgreSQL, think {args.think[0]}–{args.think[1]} s, {wall:.0f} s wall, "
          f"{os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'request':<10}{'n':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in ("start", "answer", "page"):
        c = stats.ms.get(kind, [])
        print(f"{kind:<10}{len(c):>8}{stats.errors.get(kind, 0):>8}{pct(c, 50):>9.1f}{pct(c, 95):>9.1f}"
              f"{pct(c, 99):>9.1f}{max(c) if c else float('nan'):>9.1f}")
    print(f"completed responses: {stats.completed} of {args.respondents} (database: {completes}); gave up: "
          f"{stats.gave_up}; answers acknowledged: {acknowledged}; acknowledged but lost: {lost}; "
          f"answers/s: {len(stats.ms.get('answer', [])) / wall:.1f}")
    for e in stats.samples:
        print("  error:", e)
    return 0 if lost == 0 and not sum(stats.errors.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
