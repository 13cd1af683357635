"""Load test of the interviewer console: N simulated interviewers answering concurrently against the app served
by gunicorn on PostgreSQL (a temporary database, dropped afterwards).

Each simulated interviewer signs in, then repeatedly takes the next case, starts the interview and answers it
question by question exactly as the console's fetch() does (one POST per answer, the next question's HTML in
the reply), with a think time between answers, and completes it at the end. No telephone call is placed: the
point is the server-side cost of the interview itself (dialing is covered by the browser tests).

Prints a table of latencies (client-measured and the server's own ``Server-Timing``) and errors, then checks
in the database that every acknowledged answer is stored.

    python scripts/load_console.py --interviewers 100 --duration 60
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.migrate import upgrade  # noqa: E402
from cati.models import Answer, Case, CasePhone, Enterprise, Industry, Interview, InterviewStatus, Role, User  # noqa: E402
from cati.services.studies import default_study_file, install_study  # noqa: E402
from cati.services.users import hash_password  # noqa: E402

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')
TIMING_RE = re.compile(r"dur=([\d.]+)")


def open_timezone(now: datetime) -> str:
    """A whole-hour zone where it is 14:xx now: inside every calling window for the next hour."""
    h = 14 - now.hour
    return "Etc/GMT" if h == 0 else (f"Etc/GMT-{h}" if h > 0 else f"Etc/GMT+{-h}")


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


def setup_database(admin_url: str, n_interviewers: int, n_cases: int) -> tuple[str, str]:
    admin = make_engine(admin_url)
    name = f"cati_load_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    tz = open_timezone(now)
    pw = hash_password("password-123")
    with transaction(factory) as s:
        study = install_study(s, default_study_file())
        ind = Industry(name="银行")
        s.add(ind)
        s.flush()
        ents = []
        for i in range(20):
            e = Enterprise(study_id=study.id, external_id=f"L{i:03d}", name=f"负载测试企业{i}", industry_id=ind.id,
                           quota_target=10_000)
            s.add(e)
            ents.append(e)
        s.flush()
        s.execute(insert(User), [dict(username=f"load{i:03d}", display_name=f"访员{i:03d}", password_hash=pw,
                                      role=Role.INTERVIEWER, is_active=True, language="zh-CN", refusal_converter=False,
                                      created_at=now) for i in range(n_interviewers)])
        s.execute(insert(Case), [dict(id=i + 1, study_id=study.id, enterprise_id=ents[i % len(ents)].id,
                                      case_ref=f"LC{i:07d}", replicate=1, status="ready", timezone=tz,
                                      next_call_at=now - timedelta(minutes=5), attempts=0, tried_day_parts=0,
                                      needs_converter=False, attributes={}, imported_at=now)
                                 for i in range(n_cases)])
        s.execute(insert(CasePhone), [dict(study_id=study.id, case_id=i + 1, position=1, e164=f"+86137{i:08d}",
                                           kind="mobile", timezone=tz, status="ok", attempts=0)
                                      for i in range(n_cases)])
    engine.dispose()
    return url, name


def drop_database(admin_url: str, name: str) -> None:
    admin = make_engine(admin_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client: dict[str, list[float]] = defaultdict(list)
        self.server: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.acknowledged: dict[int, set[str]] = defaultdict(set)  # interview id -> codes the server acknowledged

    def add(self, kind: str, ms: float, resp: requests.Response | None, ok: bool, note: str = "") -> None:
        with self.lock:
            self.client[kind].append(ms)
            if resp is not None:
                m = TIMING_RE.search(resp.headers.get("Server-Timing", ""))
                if m:
                    self.server[kind].append(float(m.group(1)))
            if not ok:
                self.errors[kind] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{kind}: {note}")


def interviewer(base: str, username: str, types: dict[str, str], stats: Stats, stop: threading.Event,
                think: tuple[float, float], rng: random.Random, ready: threading.Barrier) -> None:
    http = requests.Session()
    t0 = time.perf_counter()
    r = http.get(base + "/login")
    token = CSRF_RE.search(r.text).group(1)
    r = http.post(base + "/login", data={"username": username, "password": "password-123", "csrf_token": token},
                  allow_redirects=False)
    stats.add("login", (time.perf_counter() - t0) * 1000, None, r.status_code == 302, f"{r.status_code}")
    token = CSRF_RE.search(http.get(base + "/interviewer").text).group(1) if r.status_code == 302 else None
    # Everyone signs in first (argon2 is deliberately slow), then all answer at once.
    ready.wait()
    if token is None:
        return
    headers = {"X-CSRFToken": token, "X-Requested-With": "fetch", "Accept": "application/json"}

    def post(kind: str, path: str, data: dict | None = None) -> dict | None:
        t = time.perf_counter()
        try:
            resp = http.post(base + path, data=data or {}, headers=headers, timeout=30)
        except requests.RequestException as exc:
            stats.add(kind, (time.perf_counter() - t) * 1000, None, False, repr(exc))
            return None
        ms = (time.perf_counter() - t) * 1000
        body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else None
        ok = resp.status_code == 200 and bool(body) and body.get("ok", False)
        stats.add(kind, ms, resp, ok, f"{resp.status_code} {str(body)[:120]}")
        return body if ok else None

    while not stop.is_set():
        got = post("next_case", "/interviewer/next")
        if not got or "case_id" not in got:
            return
        case_id = got["case_id"]
        if not post("start", f"/interviewer/case/{case_id}/start"):
            return
        page = http.get(base + "/interviewer").text
        m = re.search(r'id="step" data-interview="(\d+)" data-code="([^"]+)"', page)
        interview_id, code = int(m.group(1)), m.group(2)
        while True:
            qtype = types[code]
            value = {"info": "", "open": "希望等待时间再短一些"}.get(qtype)
            if value is None:
                value = "1" if code in ("CONSENT", "S1", "S2", "CB1") or qtype == "single" else str(rng.randint(1, 5))
            time.sleep(rng.uniform(*think))
            body = post("answer", f"/interviewer/interview/{interview_id}/answer", {"code": code, "value": value})
            if body is None:
                return
            if qtype != "info":
                with stats.lock:
                    stats.acknowledged[interview_id].add(code)
            if body.get("done") == "complete":
                with stats.lock:
                    stats.client["completes"].append(1)
                break
            code = body["code"]
        if stop.is_set():
            return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interviewers", type=int, default=100)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of answering after everyone signed in")
    ap.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                    help="seconds between answers: reading an item aloud and hearing the answer takes a fast "
                         "interviewer 2-6 s; use 0.5 1.5 for a stress run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--pg-url", default=os.environ.get("CATI_TEST_POSTGRES_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    admin_url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    from cati.study.loader import load_study

    spec = load_study(default_study_file())
    types = {q.code: q.type for q in spec.questions}

    print(f"setting up a temporary PostgreSQL database ({args.interviewers} interviewers)…", flush=True)
    url, name = setup_database(admin_url, args.interviewers, n_cases=args.interviewers * 40)
    port = free_port()
    instance = Path("/tmp") / f"cati-load-{name}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")},
           "CATI_DATABASE_URL": url, "CATI_INSTANCE_PATH": str(instance), "CATI_SECRET_KEY": uuid.uuid4().hex}
    server = subprocess.Popen(
        # Keep-alive longer than the pause between two answers: with gunicorn's default (2 s) the server closes
        # the console's idle connection just as the next answer is sent on it.
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(args.workers), "--threads", str(args.threads),
         "--keep-alive", "75", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "cati.app:create_app()"],
        cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        stats = Stats()
        stop = threading.Event()
        ready = threading.Barrier(args.interviewers + 1)
        threads = [threading.Thread(target=interviewer, args=(base, f"load{i:03d}", types, stats, stop,
                                                              tuple(args.think), random.Random(i), ready),
                                    daemon=True)
                   for i in range(args.interviewers)]
        for th in threads:
            th.start()
        ready.wait()
        print("all signed in; answering…", flush=True)
        started = time.perf_counter()
        time.sleep(args.duration)
        stop.set()
        for th in threads:
            th.join(60)
        wall = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        stored = defaultdict(set)
        for iid, code in s.execute(select(Answer.interview_id, Answer.question_code)
                                   .where(Answer.value_code.is_not(None) | Answer.value_text.is_not(None))):
            stored[iid].add(code)
        completes = s.scalar(select(func.count()).select_from(Interview)
                             .where(Interview.status == InterviewStatus.COMPLETE))
    engine.dispose()
    lost = sum(len(codes - stored.get(iid, set())) for iid, codes in stats.acknowledged.items())
    acknowledged = sum(len(c) for c in stats.acknowledged.values())
    if not args.keep_db:
        drop_database(admin_url, name)

    print()
    print(f"{args.interviewers} interviewers, gunicorn {args.workers} workers × {args.threads} threads, PostgreSQL, "
          f"think time {args.think[0]}–{args.think[1]} s, {wall:.0f} s wall, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'request':<12}{'n':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'srv p50':>9}{'srv p95':>9}")
    for kind in ("login", "next_case", "start", "answer"):
        c = stats.client.get(kind, [])
        sv = stats.server.get(kind, [])
        print(f"{kind:<12}{len(c):>8}{stats.errors.get(kind, 0):>8}{pct(c, 50):>9.1f}{pct(c, 95):>9.1f}"
              f"{pct(c, 99):>9.1f}{max(c) if c else float('nan'):>9.1f}{pct(sv, 50):>9.1f}{pct(sv, 95):>9.1f}")
    n_answers = len(stats.client.get("answer", []))
    print(f"answers/s: {n_answers / wall:.1f}; completed interviews: {completes}; "
          f"acknowledged answers: {acknowledged}; acknowledged but missing in the database: {lost}")
    for e in stats.error_samples:
        print("  error:", e)
    p95 = pct(stats.client.get("answer", []), 95)
    errors = sum(stats.errors.values())
    verdict = p95 <= 50 and errors == 0 and lost == 0
    print(f"answer-save p95 {p95:.1f} ms (target ≤ 50 ms), errors {errors}, lost {lost}: "
          f"{'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
