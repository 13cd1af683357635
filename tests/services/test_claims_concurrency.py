"""Two interviewers never get the same case: 50 threads × 100 claims against one database (both backends) in the
default run; 50 × 1,000 as a ``slow`` test (``python -m pytest -m slow``), which took 539 of a run's 641 s."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from sqlalchemy import select, update

from cati.db import transaction
from cati.models import Case, CaseStatus, Study
from cati.services.scheduling import Claim, next_case
from tests import factories as f

THREADS = int(os.environ.get("CATI_CLAIM_THREADS", 50))


@pytest.mark.parametrize("claims", [pytest.param(100, id="50x100"),
                                    pytest.param(1000, id="50x1000", marks=pytest.mark.slow)])
def test_no_double_claims_under_concurrency(session_factory, study, engine, claims):
    claims = int(os.environ.get("CATI_CLAIMS_PER_THREAD", claims))
    n_enterprises = 50
    per_enterprise = THREADS * claims // n_enterprises
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        for _ in range(n_enterprises):
            e = f.enterprise(s, st, quota=10**6)
            f.cases(s, st, e, per_enterprise)
        interviewers = [f.user(s, username=f"iv{i:03d}").id for i in range(THREADS)]

    got: dict[int, list[int]] = {iv: [] for iv in interviewers}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(iv: int) -> None:
        try:
            start.wait()
            for _ in range(claims):
                with transaction(session_factory) as s:
                    result = next_case(s, st, iv, f.MONDAY_10AM)
                assert isinstance(result, Claim), result
                got[iv].append(result.case_id)
                with transaction(session_factory) as s:
                    # The interviewer finishes with the case (what coding an outcome does to its status).
                    done = s.execute(update(Case).where(Case.id == result.case_id, Case.claimed_by_id == iv,
                                                        Case.status == CaseStatus.CLAIMED)
                                     .values(status=CaseStatus.FINAL, final_disposition="4.10", claimed_by_id=None))
                    assert done.rowcount == 1, f"case {result.case_id} was not held by interviewer {iv}"
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(iv,)) for iv in interviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    claimed = [cid for ids in got.values() for cid in ids]
    dupes = [cid for cid, n in Counter(claimed).items() if n > 1]
    assert dupes == []
    assert len(claimed) == THREADS * claims
    with transaction(session_factory) as s:
        finals = s.scalar(select(Case.id).where(Case.status != CaseStatus.FINAL).limit(1))
        assert finals is None  # every case was claimed exactly once and finished


def test_a_claim_in_flight_hides_only_the_case_it_takes(session_factory, study, engine):
    """The last cases of a study: while one claimer's transaction is still open, another claimer gets the other
    case at once instead of being told to wait (it was, when a claim locked spare candidates)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite claimers queue on the write lock: no two claims are ever in flight")
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, quota=10)
        f.cases(s, st, e, 2)
        first, second = f.user(s, username="iv_a").id, f.user(s, username="iv_b").id
    with transaction(session_factory) as held:
        a = next_case(held, st, first, f.MONDAY_10AM)
        assert isinstance(a, Claim)
        with transaction(session_factory) as s:  # while the first claim is not yet committed
            b = next_case(s, st, second, f.MONDAY_10AM)
        assert isinstance(b, Claim), b
        assert b.case_id != a.case_id
