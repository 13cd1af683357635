"""The telephony lab matrix as a table: every behaviour × both AMI clients × both process shapes.

Starts a lab (real Asterisk 22.10.1 PBX + an outside world over PJSIP, ``cati.telephony.lab``), runs every
scenario of ``cati.telephony.lab.SCENARIOS`` at once per (client, shape) through the console's dialer path, and
prints what each attempt ended with. ``ok`` means: the expected code, source, cause, AMD verdict, ringing and
answer, the call ended, and no channel left up 3 s later.

    python scripts/lab_matrix.py

Exit status 1 when any cell is wrong.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cati.telephony.lab import SCENARIOS, TelephoneLab, run_scenarios, wrong_results  # noqa: E402
from cati.telephony.testcall import scratch_database  # noqa: E402

COMBOS = [("panoramisk", "in-process"), ("panoramisk", "worker"), ("asterisk-ami", "in-process"),
          ("asterisk-ami", "worker")]


def cell(r, expected) -> str:
    ok = {k: getattr(r, k) for k in expected} == expected and r.ended and r.legs_left == 0
    code = r.outcome or (f"{r.source}" if r.source else f"person:{r.amd}")
    return f"{'ok' if ok else 'WRONG'} {code}"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cati-lab-matrix-") as tmp:
        lab = TelephoneLab(Path(tmp) / "lab").start()
        try:
            url, factory = scratch_database(Path(tmp) / "db")
            table = {}
            wrong = []
            for client, shape in COMBOS:
                results = run_scenarios(lab, factory, url, Path(tmp), client=client, shape=shape)
                table[(client, shape)] = results
                wrong += [f"{client}/{shape} {w}" for w in wrong_results(results)]
        finally:
            lab.stop()
    heads = [f"{c}/{s}" for c, s in COMBOS]
    print(f"{'scenario':32}" + "".join(f"{h:>26}" for h in heads))
    for name, (_, _, _, expected) in SCENARIOS.items():
        print(f"{name:32}" + "".join(f"{cell(table[k][name], expected):>26}" for k in COMBOS))
    total = len(SCENARIOS) * len(COMBOS)
    print(f"\n{total - len(wrong)} of {total} right (real Asterisk 22.10.1 over PJSIP)")
    for w in wrong:
        print("WRONG", w)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
