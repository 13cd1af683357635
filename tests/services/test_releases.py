"""Releases: a frozen, named snapshot of a study's scored completes that pages, reports and exports share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cati.db import transaction
from cati.i18n import KeyedError
from cati.models import AuditLog, Interview, InterviewStatus, Study
from cati.services import publishing, releases
from scoring import ScoringSpec, score_study
from tests.reports.test_cli_database import db_study, stored  # noqa: F401 - fixtures: 6 enterprises × 8 completes


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_release_freezes_the_scores_and_its_files_are_the_same_bytes_as_build_all(
        db_study, stored, session_factory, tmp_path):  # noqa: F811
    releases.clear_caches()
    with transaction(session_factory) as s:
        study = s.get(Study, db_study.id)
        rel = releases.create_release(s, study, name="2026 final", n_boot=40, seed=7,
                                      now=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
        rid = rel.id
    with transaction(session_factory) as s:
        study = s.get(Study, db_study.id)
        frozen = releases.from_release(s, study, rid)
        # the stored figures are scoring's figures for those completes, seed and replicate count
        fresh = score_study(frozen.responses, ScoringSpec.from_study(study.definition), n_boot=40, seed=7)
        assert frozen.result.overall["composite"] == pytest.approx(fresh.overall["composite"], abs=1e-12)
        assert frozen.result.overall["ci_low"] == pytest.approx(fresh.overall["ci_low"], abs=1e-12)
        assert frozen.result.method["release"] == "2026 final"
        # a new answer change does not move the release, but moves live scores
        one = s.query(Interview).filter_by(status=InterviewStatus.COMPLETE).first()
        one.status = InterviewStatus.TERMINATED
    with transaction(session_factory) as s:
        study = s.get(Study, db_study.id)
        rel = releases.release_row(s, study, rid)
        assert releases.from_release(s, study, rid).result.overall["n_respondents"] == 48
        assert releases.live(s, study).result.overall["n_respondents"] == 47
        a = publishing.build_all(s, study, tmp_path / "a", release=rel, products=("industry", "exports"),
                                 formats={"industry": ("html", "pdf", "xlsx"), "exports": ("csv", "xlsx", "sav")})
    import time

    time.sleep(1.1)  # a second later: the files still say the release's date, so they are the same bytes
    with transaction(session_factory) as s:
        study = s.get(Study, db_study.id)
        b = publishing.build_all(s, study, tmp_path / "b", release=releases.release_row(s, study, rid),
                                 products=("industry", "exports"),
                                 formats={"industry": ("html", "pdf", "xlsx"), "exports": ("csv", "xlsx", "sav")})
        assert s.query(AuditLog).filter_by(action="release.create").count() == 1
    assert a.errors == b.errors == {}
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(fa) >= {"industry_report.zh-CN.pdf", "data/responses.sav", "data/responses.xlsx"}
    assert fa == fb
    html = (tmp_path / "a" / "industry_report.zh-CN.html").read_text(encoding="utf-8")
    assert "2026 final" in html and "2026-12-01 09:30 UTC" in html  # the method section names the release
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "a" / "data" / "responses.csv")) == 48  # the frozen completes


def test_bad_release_requests_are_refused_with_a_reason(db_study, stored, session_factory):  # noqa: F811
    with transaction(session_factory) as s:
        study = s.get(Study, db_study.id)
        releases.create_release(s, study, name="R1", n_boot=0)
        for kwargs, key in (({"name": " "}, "an_release_name_needed"), ({"name": "R1"}, "an_release_name_taken"),
                            ({"name": "R2", "n_boot": -1}, "an_release_replicates")):
            with pytest.raises(KeyedError) as err:
                releases.create_release(s, study, **kwargs)
            assert err.value.key == key
