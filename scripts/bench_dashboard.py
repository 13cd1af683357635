"""Benchmark of the supervisor dashboard: the quota board's server time with 360 enterprises, and how far its live
updates (server-sent events) lag behind the database while 100 simulated interviewers work.

    python scripts/bench_dashboard.py                      # SQLite in a temp folder, 40 s of work
    python scripts/bench_dashboard.py --seconds 60 --pace 1.0 --screenshots /tmp/board-shots
    python scripts/bench_dashboard.py --db-url postgresql://user:pw@host/emptydb

What it does:
1. builds a study shaped like the reference one: 360 enterprises in 15 industries and 7 regions, 200 cases each
   (150 released, 50 in an unreleased second replicate; 72,000 cases), ~3,600 completes spread over three days,
   100 interviewers signed in and one supervisor;
2. serves the real app with gunicorn (``cati.app:create_app()``) in a subprocess and signs in;
3. times ``GET /supervisor/`` (the server's own ``Server-Timing`` figure and the wall time seen by the client),
   idle and while the interviewers work;
4. opens the live stream and starts 100 writer threads that act like interviewers through the real services
   (claim the next case, dial, code a no-answer / callback, or run a whole interview to a complete), one action
   every ``--pace`` seconds each (real interviewers act every 30–60 s: the default is ~20× real load);
5. for every committed complete, measures the delay until the stream shows that enterprise's new count;
6. prints a table (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.migrate import upgrade  # noqa: E402
from cati.models import (  # noqa: E402
    CallAttempt,
    Case,
    CasePhone,
    Enterprise,
    Industry,
    Interview,
    Replicate,
    Role,
    Study,
    User,
)
from cati.models.agents import AgentStatus  # noqa: E402
from cati.services import agents  # noqa: E402
from cati.services import supervision as sv  # noqa: E402
from cati.services.interviews import complete_interview, save_answers, start_interview  # noqa: E402
from cati.services.scheduling import Claim, mark_dialed, next_case, record_outcome, rules_for  # noqa: E402
from cati.services.studies import default_study_file, install_study  # noqa: E402
from cati.services.users import hash_password  # noqa: E402

INDUSTRIES = ["通信", "银行", "公共服务", "互联网", "互联网金融", "零售", "互联网旅游", "基金", "汽车", "保险", "制造业",
              "物流快递", "地产", "证券", "其他"]
REGIONS = ["华北", "华东", "华南", "华中", "西南", "西北", "东北"]
ANSWERS = {"INTRO": None, "CONSENT": 1, "S1": 1, "S2": 1, **{c: 4 for c in
           "A1 A2 A3 A4 B1 B2 B3 B4 C1 C2 C3 C4".split()}, "D0": 2, **{c: 5 for c in "E1 E2 E3 F1 F2 F3 F4".split()},
           "Q0": 4, "CB1": 1, "OPEN1": "无", "P1": 2, "P2": 3, "P3": 1, "END": None}


def open_timezone(now: datetime) -> str:
    """A whole-hour zone where it is 14:xx now (inside every calling window for an hour)."""
    h = 14 - now.hour
    return "Etc/GMT" if h == 0 else (f"Etc/GMT-{h}" if h > 0 else f"Etc/GMT+{-h}")


def pctl(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------------- data


def build(factory, *, enterprises: int, cases_per: int, interviewers: int, now: datetime) -> dict:
    tz = open_timezone(now)
    rng = random.Random(7)
    with transaction(factory) as s:
        study = install_study(s, default_study_file())
        inds = []
        for name in INDUSTRIES:
            row = Industry(name=name)
            s.add(row)
            inds.append(row)
        s.flush()
        ent_rows = [dict(id=i + 1, study_id=study.id, external_id=f"E{i + 1:04d}", name=f"{INDUSTRIES[i % 15]}企业{i + 1:03d}",
                         industry_id=inds[i % 15].id, province="广东", region=REGIONS[i % 7], quota_target=20,
                         completes=0, in_progress=0, status="active", attributes={}, created_at=now)
                    for i in range(enterprises)]
        s.execute(insert(Enterprise), ent_rows)
        cases, phones, reps, ivs = [], [], [], []
        cid = 0
        released = cases_per * 3 // 4
        done_by_ent = {}
        for e in ent_rows:
            done = rng.randint(0, 16)  # already-achieved completes before the run
            done_by_ent[e["id"]] = done
            for j in range(cases_per):
                cid += 1
                rep = 1 if j < released else 2
                final = j < done
                cases.append(dict(id=cid, study_id=study.id, enterprise_id=e["id"], case_ref=f"C{cid:08d}",
                                  replicate=rep, status=("final" if final else "ready" if rep == 1 else "unreleased"),
                                  timezone=tz, attempts=1 if final else 0,
                                  next_call_at=None if final or rep == 2 else now - timedelta(minutes=5),
                                  final_disposition="1.1" if final else None,
                                  finalized_at=now - timedelta(hours=rng.uniform(0, 72)) if final else None,
                                  tried_day_parts=0, needs_converter=False, attributes={}, imported_at=now))
                phones.append(dict(study_id=study.id, case_id=cid, position=1, e164=f"+86139{cid:08d}", kind="mobile",
                                   timezone=tz, status="ok", attempts=0))
                if final:
                    ended = cases[-1]["finalized_at"]
                    ivs.append(dict(study_id=study.id, case_id=cid, interviewer_id=None, status="complete",
                                    language="zh-CN", started_at=ended - timedelta(minutes=9), ended_at=ended,
                                    disposition="1.1", qc_status="unreviewed"))
            reps += [dict(study_id=study.id, enterprise_id=e["id"], number=1, size=released, released_at=now),
                     dict(study_id=study.id, enterprise_id=e["id"], number=2, size=cases_per - released)]
        for k in range(0, len(cases), 20000):
            s.execute(insert(Case), cases[k:k + 20000])
            s.execute(insert(CasePhone), phones[k:k + 20000])
        s.execute(insert(Replicate), reps)
        s.execute(insert(Interview), ivs)
        for eid, done in done_by_ent.items():
            s.execute(Enterprise.__table__.update().where(Enterprise.id == eid).values(completes=done))
        pw = hash_password("password-123")
        s.add(User(username="sup", display_name="督导", password_hash=pw, role=Role.SUPERVISOR))
        ids = []
        for i in range(interviewers):
            u = User(username=f"iv{i:03d}", display_name=f"访员{i:03d}", password_hash=pw, role=Role.INTERVIEWER,
                     extension=f"8{i:03d}")
            s.add(u)
            s.flush()
            ids.append(u.id)
            agents.begin_shift(s, u.id, now - timedelta(hours=2))
        return {"study_id": study.id, "interviewers": ids, "cases": len(cases), "completes": len(ivs)}


# -------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_url: str, instance: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")}, "CATI_DATABASE_URL": db_url,
           "CATI_INSTANCE_PATH": str(instance), "CATI_SECRET_KEY": "bench-secret", "CATI_TELEPHONY": "simulated"}
    instance.mkdir(parents=True, exist_ok=True)
    log = open(instance / "gunicorn.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(threads), "-w", "1",
                             "--timeout", "120", "--graceful-timeout", "1", "-b", f"127.0.0.1:{port}", "cati.app:create_app()"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise SystemExit((instance / "gunicorn.log").read_text()[-3000:])
        time.sleep(0.2)
    raise SystemExit("server did not start")


def sign_in(url: str) -> requests.Session:
    http = requests.Session()
    html = http.get(url + "/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    r = http.post(url + "/login", data={"username": "sup", "password": "password-123", "csrf_token": token},
                  allow_redirects=False)
    if r.status_code != 302:
        raise SystemExit(f"sign-in failed: {r.status_code}")
    return http


def time_board(http: requests.Session, url: str, n: int) -> tuple[list[float], list[float], int]:
    server, wall, size = [], [], 0
    for _ in range(n):
        t = time.perf_counter()
        r = http.get(url + "/supervisor/")
        wall.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        server.append(float(re.search(r"dur=([\d.]+)", r.headers["Server-Timing"]).group(1)))
        size = len(r.content)
    return server, wall, size


# ------------------------------------------------------------------------------------------------- workers


class Writers:
    """Simulated interviewers writing through the real services; every committed complete is logged as
    (enterprise id, its completes after the commit, commit wall time)."""

    def __init__(self, factory, study_id: int, ids: list[int], pace: float, complete_share: float, seed: int = 1):
        self.factory, self.study_id, self.ids, self.pace, self.share = factory, study_id, ids, pace, complete_share
        self.stop = threading.Event()
        self.commits: list[tuple[int, int, float]] = []
        self.actions = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.seed = seed

    def run(self, uid: int, k: int) -> None:
        rng = random.Random(self.seed * 1000 + k)
        with self.factory() as s:
            study = s.get(Study, self.study_id)
            s.expunge(study)
        rules = rules_for(study)
        time.sleep(rng.uniform(0, self.pace))
        while not self.stop.is_set():
            try:
                now = datetime.now(UTC)
                with transaction(self.factory) as s:
                    claim = next_case(s, study, uid, now)
                    if not isinstance(claim, Claim):
                        time.sleep(self.pace)
                        continue
                    case = s.get(Case, claim.case_id)
                    part = mark_dialed(s, case, now, rules)
                    attempt = CallAttempt(call_id=f"b-{uid}-{time.time_ns()}", case_id=case.id, interviewer_id=uid,
                                          backend="simulated", requested_at=now, answered_at=now, day_part=part)
                    s.add(attempt)
                    s.flush()
                    agents.set_state(s, uid, AgentStatus.TALKING, now, case_id=case.id, call_id=attempt.call_id)
                    eid = case.enterprise_id
                    if rng.random() < self.share:
                        iv = start_interview(s, case, uid, now - timedelta(minutes=8), attempt_id=attempt.id)
                        save_answers(s, iv, ANSWERS, user_id=uid, now=now)
                        complete_interview(s, iv, now, user_id=uid)
                        attempt.ended_at = now
                        done = s.scalar(select(Enterprise.completes).where(Enterprise.id == eid))
                    else:
                        code = rng.choice(["3.13", "3.13", "2.21", "3.12"])
                        attempt.outcome, attempt.ended_at = code, now
                        record_outcome(s, case, code, now, interviewer_id=uid, rules=rules)
                        done = None
                    agents.set_state(s, uid, AgentStatus.READY, now)
                committed = time.time()
                with self.lock:
                    self.actions += 1
                    if done is not None:
                        self.commits.append((eid, done, committed))
            except Exception as exc:  # noqa: BLE001 - a benchmark reports errors, it doesn't stop on them
                with self.lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            time.sleep(rng.uniform(0.5, 1.5) * self.pace)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run, args=(uid, k), daemon=True) for k, uid in enumerate(self.ids)]
        for t in threads:
            t.start()
        return threads


class StreamWatcher(threading.Thread):
    """Reads the board's SSE stream and remembers when each enterprise's completes count was first seen."""

    def __init__(self, http: requests.Session, url: str):
        super().__init__(daemon=True)
        self.http, self.url = http, url
        self.seen: dict[tuple[int, int], float] = {}
        self.events = 0
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            self._read()
        except requests.RequestException:  # the server going away at the end of the run
            pass

    def _read(self) -> None:
        with self.http.get(self.url + "/supervisor/stream?what=board&max=3600", stream=True, timeout=120) as r:
            buf = ""
            for chunk in r.iter_content(chunk_size=None, decode_unicode=True):
                now = time.time()
                buf += chunk
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    m = re.search(r"^data: (.*)$", block, re.M)
                    if not m or "event: board" not in block:
                        continue
                    self.events += 1
                    for row in json.loads(m.group(1))["rows"]:
                        self.seen.setdefault((row["eid"], row["completes"]), now)
                    self.ready.set()
                if self.stop.is_set():
                    return


# ---------------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db-url", help="an empty PostgreSQL database (default: SQLite in a temp folder)")
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--cases-per", type=int, default=200)
    ap.add_argument("--interviewers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=40.0, help="how long the interviewers work")
    ap.add_argument("--pace", type=float, default=2.0, help="seconds between one interviewer's actions")
    ap.add_argument("--complete-share", type=float, default=0.3, help="share of actions that are a complete")
    ap.add_argument("--renders", type=int, default=20)
    ap.add_argument("--screenshots", help="folder for PNGs of the board, interviewers and outcomes pages")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    db_url = args.db_url or f"sqlite:///{tmp / 'cati.sqlite'}"
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    t = time.perf_counter()
    facts = build(factory, enterprises=args.enterprises, cases_per=args.cases_per, interviewers=args.interviewers,
                  now=now)
    print(f"data: {args.enterprises} enterprises, {facts['cases']:,} cases, {facts['completes']:,} completes, "
          f"{args.interviewers} interviewers ({time.perf_counter() - t:.1f} s to build); db {engine.dialect.name}")

    rows: list[tuple] = []

    def add(name, xs, note=""):
        rows.append((name, len(xs), pctl(xs, 50), pctl(xs, 95), max(xs) if xs else float("nan"), note))

    # In-process cost of what each live poll computes.
    with factory() as s:
        study = s.get(Study, facts["study_id"])
        board_ms, live_ms = [], []
        for _ in range(10):
            t = time.perf_counter()
            board = sv.quota_board(s, study, datetime.now(UTC))
            board_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            sv.interviewers_live(s, study, datetime.now(UTC))
            live_ms.append((time.perf_counter() - t) * 1000)
        s.rollback()
    assert len(board) == args.enterprises
    add("quota_board() in process", board_ms, f"{len(board)} rows")
    add("interviewers_live() in process", live_ms, f"{args.interviewers} interviewers")

    proc, url = start_server(db_url, tmp / "instance", threads=16)
    try:
        http = sign_in(url)
        time_board(http, url, 3)  # warm-up: imports, template compile
        server_ms, wall_ms, size = time_board(http, url, args.renders)
        add("GET /supervisor/ server time, idle", server_ms, f"{size / 1024:.0f} KiB HTML")
        add("GET /supervisor/ wall time, idle", wall_ms)

        watcher = StreamWatcher(sign_in(url), url)
        watcher.start()
        if not watcher.ready.wait(30):
            raise SystemExit("no first board event on the stream in 30 s")
        writers = Writers(factory, facts["study_id"], facts["interviewers"], args.pace, args.complete_share)
        threads = writers.start()
        busy_server, busy_wall = [], []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            sm, wm, _ = time_board(http, url, 1)
            busy_server += sm
            busy_wall += wm
            time.sleep(1.0)
        writers.stop.set()
        for th in threads:
            th.join(30)
        time.sleep(2.0)  # let the stream catch the last commits
        watcher.stop.set()
        add("GET /supervisor/ server time, 100 working", busy_server)
        add("GET /supervisor/ wall time, 100 working", busy_wall)
        lags, missing = [], 0
        for eid, done, committed in writers.commits:
            seen = [t for (e, c), t in watcher.seen.items() if e == eid and c >= done and t >= committed - 0.001]
            if seen:
                lags.append((min(seen) - committed) * 1000)
            else:
                missing += 1
        add("live update lag (commit → SSE shows it)", lags,
            f"{len(writers.commits)} completes, {missing} never seen, {watcher.events} events")
        rate = writers.actions / args.seconds
        print(f"work: {writers.actions} interviewer actions in {args.seconds:.0f} s ({rate:.1f}/s, "
              f"{len(writers.commits)} completes), errors: {len(writers.errors)}")
        for e in sorted(set(writers.errors))[:5]:
            print("   ", e)

        if args.screenshots:
            shoot(url, Path(args.screenshots))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # an open event stream keeps a worker thread busy
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        engine.dispose()
        if not args.db_url:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"{'measure':<44} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  note")
    print("-" * 100)
    for name, n, p50, p95, mx, note in rows:
        print(f"{name:<44} {n:>5} {p50:>9.1f} {p95:>9.1f} {mx:>9.1f}  {note}")
    target = [r for r in rows if r[0] == "GET /supervisor/ server time, idle"][0]
    lag = [r for r in rows if r[0].startswith("live update lag")][0]
    print()
    print(f"board < 500 ms server time: {'yes' if target[3] < 500 else 'NO'} (p95 {target[3]:.0f} ms); "
          f"live lag < 1 s: {'yes' if lag[3] < 1000 else 'NO'} (p95 {lag[3]:.0f} ms, max {lag[4]:.0f} ms)")


def shoot(url: str, folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args, headless=True)
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(url + "/login")
        page.fill("#username", "sup")
        page.fill("#password", "password-123")
        page.click("button[type=submit]")
        page.wait_for_url(url + "/supervisor/")
        page.wait_for_selector("#live.on")
        page.screenshot(path=str(folder / "board-360.png"))
        page.click("details.rollups summary")
        page.screenshot(path=str(folder / "board-rollups.png"))
        for name, path in [("interviewers", "/supervisor/interviewers"), ("outcomes", "/supervisor/outcomes"),
                           ("outcomes-industry", "/supervisor/outcomes?group=industry"), ("qc", "/supervisor/qc"),
                           ("sample", "/supervisor/sample")]:
            page.goto(url + path)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=name.startswith("outcomes"))
        b.close()
    print(f"screenshots in {folder}")


if __name__ == "__main__":
    main()
