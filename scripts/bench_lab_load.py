"""Load through the real telephone lab: N concurrent calls, R rounds, every attempt checked; event latency.

Starts a lab (a real Asterisk PBX with our dialplan and an outside world over PJSIP, ``cati.telephony.lab``),
places ``--calls`` calls at once through the console's dialer path (``dial_and_commit``, the AMI backend, one
``BatchingEventSink`` storing every event into a SQLite file), ``--rounds`` times, with a mix of the outside
world's behaviours, and checks that each attempt ends with the code its behaviour must give and that no channel
is left up on the PBX. Latency: from the moment Asterisk stamped an event (its ``Timestamp`` header,
``timestampevents = yes``) to the commit of the attempt row it updated.

    python scripts/bench_lab_load.py                       # 20 calls x 2 rounds, both AMI clients
    python scripts/bench_lab_load.py --calls 40 --rounds 3 --client asterisk-ami

Exit status 1 when any attempt got a wrong code or a channel was left up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cati.telephony.ami import AmiBackend  # noqa: E402
from cati.telephony.dialer import BatchingEventSink  # noqa: E402
from cati.telephony.lab import BEHAVIOURS, TelephoneLab  # noqa: E402
from cati.telephony.testcall import run_test_call, scratch_database  # noqa: E402

#: behaviour → (expected outcome, expected AMD verdict or None, run options)
MIX = [
    ("person", None, "HUMAN", {"hangup_after": 2}),
    ("busy", "3.12", None, {}),
    ("machine", "3.14", "MACHINE", {}),
    ("no_answer", "3.13", None, {"ring_timeout": 15}),
    ("rejected", "3.15", None, {}),
    ("unallocated", "4.31", None, {}),
    ("congestion", "3.16", None, {}),
    ("hangup_during_amd", "3.20", "HANGUP", {}),
    ("long_call", None, "HUMAN", {"hangup_after": 3, "record": True}),
    ("busy_before_answer", "3.12", None, {}),
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run(client: str, calls: int, rounds: int, root: Path) -> tuple[list[str], list[float], int]:
    lab = TelephoneLab(root / f"lab-{client}").start()
    _url, factory = scratch_database(root / f"db-{client}")
    latencies: list[float] = []
    lock = threading.Lock()

    def stored(events):
        now = datetime.now(UTC)
        with lock:
            latencies.extend((now - e.at).total_seconds() for e in events)

    pbx = lab.pbxes[0]
    backend = AmiBackend("127.0.0.1", pbx.ami_port, lab.state.username, lab.state.secret, client=client)
    sink = BatchingEventSink(factory, on_stored=stored)
    backend.subscribe(sink)
    wrong: list[str] = []
    done = 0
    try:
        for rnd in range(rounds):
            def one(i, rnd=rnd):
                name, outcome, amd, opts = MIX[i % len(MIX)]
                r = run_test_call(backend, factory, BEHAVIOURS[name], str(1001 + i), store_events=False,
                                  timeout=60, **opts)
                ok = r.ended and r.outcome == outcome and r.amd == amd and r.legs_left == 0
                return None if ok else f"round {rnd + 1} call {i + 1} {name}: {r.line()}"

            with ThreadPoolExecutor(calls) as pool:
                results = list(pool.map(one, range(calls)))
            wrong += [w for w in results if w]
            done += calls
        left = lab.channels()
        if left:
            wrong.append(f"channels left up on the PBX: {left}")
    finally:
        sink.close()
        backend.close()
        lab.stop()
    return wrong, latencies, done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--client", choices=["panoramisk", "asterisk-ami", "both"], default="both")
    args = ap.parse_args(argv)
    if args.calls > 40:
        ap.error("--calls: the lab has 40 interviewer phones (1001-1040)")
    clients = ["panoramisk", "asterisk-ami"] if args.client == "both" else [args.client]
    rows = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="cati-lab-load-") as tmp:
        for client in clients:
            started = time.monotonic()
            wrong, lat, n = run(client, args.calls, args.rounds, Path(tmp))
            wall = time.monotonic() - started
            ms = [x * 1000 for x in lat]
            rows.append((client, n, n - len(wrong), len(ms), statistics.median(ms), pct(ms, 0.9), pct(ms, 0.99),
                         max(ms), wall))
            for w in wrong:
                print("WRONG", w)
            failed |= bool(wrong)
    print(f"\n{args.calls} concurrent calls x {args.rounds} rounds through a real Asterisk 22.10.1 (PJSIP lab)")
    print(f"{'client':13} {'calls':>5} {'right':>5} {'events':>6} {'median':>8} {'p90':>8} {'p99':>8} "
          f"{'max':>8} {'wall':>7}")
    for client, n, ok, ev, med, p90, p99, mx, wall in rows:
        print(f"{client:13} {n:5d} {ok:5d} {ev:6d} {med:6.1f}ms {p90:6.1f}ms {p99:6.1f}ms {mx:6.1f}ms {wall:6.1f}s")
    print("latency: Asterisk's event Timestamp → the attempt row committed (SQLite file, BatchingEventSink)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
