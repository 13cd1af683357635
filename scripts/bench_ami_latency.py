"""Benchmark: latency from the AMI server writing an event to the stored call-attempt row.

    python scripts/bench_ami_latency.py --calls 1000 --client panoramisk
    python scripts/bench_ami_latency.py --calls 1000 --client asterisk-ami --db file

The AMI simulator (``cati.telephony.amisim``, time compressed 1000×) plays a mix of outcomes (human with
AMD, machine, busy, no answer, congestion, rejected, unallocated); the AMI backend turns its events into call
events; every call event is stored by :func:`cati.telephony.dialer.apply_event` in its own committed
transaction (exactly what :func:`cati.telephony.dialer.event_sink` does in production), SQLite in memory or
in a temporary file. For each stored call event we take the time the server wrote the AMI event that
produced it and the time its transaction committed. Prints median, p90, p99 and max over all call events,
and per kind.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.models import Base, CallAttempt, Case, CasePhone, Enterprise, Industry, User  # noqa: E402
from cati.services.studies import default_study_file, install_study  # noqa: E402
from cati.telephony.ami import AmiBackend  # noqa: E402
from cati.telephony.amisim import AmiSimServer, Script  # noqa: E402
from cati.telephony.dialer import BatchingEventSink, apply_event, start_attempt  # noqa: E402

MIX = [("human", 30), ("noanswer", 25), ("busy", 10), ("rejected", 10), ("machine", 8), ("congestion", 7),
       ("unallocated", 10)]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def key_of(msg: dict) -> tuple:
    return (msg.get("Event"), msg.get("Uniqueid") or msg.get("DestUniqueid"), msg.get("Timestamp"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--client", default="panoramisk", choices=["panoramisk", "asterisk-ami"])
    ap.add_argument("--db", default="file", choices=["memory", "file"], help="memory: SQLite file on tmpfs")
    ap.add_argument("--rate", type=float, default=10.0, help="calls placed per second (10/s = 600 calls a minute)")
    ap.add_argument("--sink", default="batch", choices=["batch", "single"],
                    help="batch: BatchingEventSink (production); single: one transaction per event (event_sink)")
    ap.add_argument("--time-scale", type=float, default=0.001)
    args = ap.parse_args(argv)

    # "memory": a SQLite file on tmpfs (/dev/shm) - a true :memory: database cannot be shared by the
    # dialing thread and the event thread with real transactions.
    shm = Path("/dev/shm")
    tmp = tempfile.TemporaryDirectory(dir=shm if args.db == "memory" and shm.is_dir() else None)
    url = f"sqlite:///{tmp.name}/bench.sqlite"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_sessionmaker(engine)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    numbers = []
    with transaction(factory) as s:
        study = install_study(s, default_study_file())
        ind = Industry(name="银行")
        s.add(ind)
        s.flush()
        ent = Enterprise(study_id=study.id, external_id="E1", name="企业1", industry_id=ind.id, province="广东",
                         quota_target=100000)
        iv = User(username="iv", display_name="iv", password_hash="x", role="interviewer", extension="1001")
        s.add_all([ent, iv])
        s.flush()
        s.execute(insert(Case), [dict(id=i, study_id=study.id, enterprise_id=ent.id, case_ref=f"C{i}",
                                      status="claimed", timezone="Asia/Shanghai", attempts=0, tried_day_parts=0,
                                      needs_converter=False, attributes={}, claimed_by_id=iv.id)
                                 for i in range(1, args.calls + 1)])
        s.execute(insert(CasePhone), [dict(study_id=study.id, case_id=i, position=1, e164=f"+86139{i:08d}",
                                           kind="mobile", status="ok", attempts=0) for i in range(1, args.calls + 1)])
        iv_id = iv.id
    scripts = {}
    pool = [o for o, w in MIX for _ in range(w)]
    for i in range(1, args.calls + 1):
        outcome = pool[i % len(pool)]
        num = f"86139{i:08d}"
        numbers.append((i, num))
        scripts[num] = Script(outcome, ring_s=5 + i % 20, talk_s=20)

    written: dict[tuple, float] = {}
    sim = AmiSimServer(scripts=scripts, time_scale=args.time_scale)
    sim.on_event_written = lambda msg, t: written.__setitem__(key_of(msg), t)
    host, port = sim.start()
    backend = AmiBackend(host, port, "cati", "good", client=args.client, ping_interval=30)

    lat = defaultdict(list)
    stored = threading.Semaphore(0)
    ended = set()
    lock = threading.Lock()

    def stored_cb(batch):
        t = time.time()
        for ev in batch:
            w = written.get(key_of(ev.raw))
            if w is not None:
                lat[ev.kind].append(t - w)
            else:
                lat["_unmatched"].append(0)
            if ev.kind == "ended":
                with lock:
                    if ev.call_id not in ended:
                        ended.add(ev.call_id)
                        stored.release()

    if args.sink == "batch":
        sink = BatchingEventSink(factory, on_stored=stored_cb)
    else:
        def sink(ev):
            with transaction(factory) as s:
                apply_event(s, ev, now=now)
            stored_cb([ev])

    backend.subscribe(sink)
    t0 = time.time()
    for n, (case_id, num) in enumerate(numbers):
        with transaction(factory) as s:
            case = s.get(Case, case_id)
            a = start_attempt(s, case, case.phones[0], iv_id, backend, "progressive", now=now,
                              call_id=str(uuid.uuid4()))
            call_id = a.call_id
        backend.place_call(call_id, num, "1001", machine_detection=True, timeout_s=30)
        delay = t0 + (n + 1) / args.rate - time.time()
        if delay > 0:
            time.sleep(delay)
    for _ in range(args.calls):
        if not stored.acquire(timeout=60):
            break
    elapsed = time.time() - t0
    backend.close()
    if hasattr(sink, "close"):
        sink.close()
    sim.stop()
    with factory() as s:
        rows = s.scalars(select(CallAttempt)).all()
        done = sum(1 for r in rows if r.status == "ended")
        outcomes = defaultdict(int)
        for r in rows:
            outcomes[r.outcome or "-"] += 1

    unmatched = len(lat.pop("_unmatched", []))
    allv = [x for v in lat.values() for x in v]
    print(f"AMI event → stored attempt latency ({args.client}, SQLite {args.db}, {args.calls} calls, "
          f"{args.rate:g} calls/s, sink={args.sink}, {len(allv)} stored call events, {elapsed:.1f} s)")
    print(f"{'kind':18} {'n':>6} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind in ("placed", "ringing", "answered", "answered_human", "answered_machine", "ended", "ALL"):
        v = allv if kind == "ALL" else lat.get(kind, [])
        if not v:
            continue
        print(f"{kind:18} {len(v):6d} {statistics.median(v) * 1000:10.2f} {pct(v, 90) * 1000:8.2f} "
              f"{pct(v, 99) * 1000:8.2f} {max(v) * 1000:8.2f}")
    if unmatched:
        print(f"({unmatched} call events had no matching AMI event time: synthesised by the tracker)")
    print(f"attempts ended: {done}/{args.calls}; auto outcomes: "
          + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    tmp.cleanup()


if __name__ == "__main__":
    main()
