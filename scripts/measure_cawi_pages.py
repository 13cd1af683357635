"""The web survey's page sizes and answer-save times: one respondent answers the whole happiness survey through
the real pages (Flask test client, SQLite file in a temporary folder). Prints the largest and median page, the
stylesheet, and the answer POST latency (in-process, no network; the 500-respondent load test is
scripts/load_cawi.py).

    python scripts/measure_cawi_pages.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def main() -> None:
    from cati.app import create_app
    from cati.db import make_engine, make_sessionmaker, transaction
    from cati.migrate import upgrade
    from cati.services import cawi
    from cati.services.studies import install_study
    from tests import factories
    from tests.web.test_cawi import HAPPY, Respondent

    work = Path(tempfile.mkdtemp())
    url = f"sqlite:///{work / 'cawi.sqlite'}"
    upgrade(make_engine(url))
    with transaction(make_sessionmaker(make_engine(url))) as s:
        study = install_study(s, HAPPY)
        ent = factories.enterprise(s, study)
        token = cawi.open_invitation(s, study, ent, user_id=None, now=factories.MONDAY_10AM).token
    app = create_app({"database_url": url, "instance_path": work / "instance", "secret_key": "measure"})
    phone = Respondent(app, token)
    phone.start()
    post, seconds = phone.client.post, []

    def timed(*a, **kw):
        t = time.perf_counter()
        r = post(*a, **kw)
        seconds.append(time.perf_counter() - t)
        return r

    phone.client.post = timed
    phone.answer_all()
    sizes = sorted(n for _, n in phone.pages)
    largest = max(phone.pages, key=lambda p: p[1])
    ms = sorted(1000 * x for x in seconds)
    print(f"pages: {len(sizes)}, largest {largest[1]} B ({largest[0].rsplit('/', 1)[1]}), "
          f"median {sizes[len(sizes) // 2]} B, smallest {sizes[0]} B")
    print(f"stylesheet: {len((ROOT / 'cati/web/static/cawi.css').read_bytes())} B")
    print(f"answer POST: median {ms[len(ms) // 2]:.1f} ms, p95 {ms[int(0.95 * len(ms))]:.1f} ms, "
          f"max {ms[-1]:.1f} ms (n={len(ms)})")


if __name__ == "__main__":
    main()
