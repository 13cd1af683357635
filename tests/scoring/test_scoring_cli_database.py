"""`cati score --study-id` on the live database (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from click.testing import CliRunner

from cati.cli.score import score
from cati.db import transaction
from cati.models import Answer, Case, CaseStatus, Interview, InterviewStatus, Role
from scoring import ScoringSpec, make_synthetic_responses, score_study
from tests import factories

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def stored(study, session_factory):
    """4 enterprises × 5 complete interviews, plus one partial interview that must not count."""
    spec = ScoringSpec.from_study(study.definition)
    df = make_synthetic_responses(n_enterprises=4, n_industries=2, n_respondents=20, seed=13)
    rows = []
    with transaction(session_factory) as s:
        iv = factories.user(s, Role.INTERVIEWER, username="iv-score")
        for eid, grp in df.groupby("enterprise_id", sort=True):
            ent = factories.enterprise(s, study, name=grp["enterprise_name"].iloc[0],
                                       industry_name=grp["industry"].iloc[0])
            for k, (_, row) in enumerate(grp.iterrows()):
                status = InterviewStatus.PARTIAL if (eid == "E0001" and k == 0) else InterviewStatus.COMPLETE
                case = Case(study_id=study.id, enterprise_id=ent.id, case_ref=f"{eid}-{k}", status=CaseStatus.FINAL,
                            final_disposition="1.1", attempts=1, attributes={}, imported_at=T0, finalized_at=T0)
                s.add(case)
                s.flush()
                ivw = Interview(study_id=study.id, case_id=case.id, interviewer_id=iv.id, status=status,
                                started_at=T0, ended_at=T0)
                for code in [*spec.item_codes, "D0", "Q0", "CB1"]:
                    if not pd.isna(row[code]):
                        ivw.answers.append(Answer(question_code=code, value_code=int(row[code]), answered_at=T0))
                s.add(ivw)
                if status == InterviewStatus.COMPLETE:
                    rows.append(row.copy().to_dict() | {"enterprise_id": ent.external_id})
    return pd.DataFrame(rows), spec


def test_score_from_the_database_equals_scoring_the_same_answers(app, study, stored, tmp_path):
    frame, spec = stored
    res = CliRunner().invoke(score, ["--study-id", str(study.id), "--out", str(tmp_path), "--n-boot", "0"],
                             obj={"app": app}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "the study definition in the database" in res.output
    got = pd.read_csv(tmp_path / "enterprise_scores.csv", dtype={"enterprise_id": str}).set_index("enterprise_id")
    expected = score_study(frame, spec, n_boot=0).enterprises.set_index("enterprise_id")
    assert got["n"].sum() == 19  # the partial interview does not count
    pd.testing.assert_series_equal(got["composite"], expected["composite"], check_names=False)


def test_unknown_study_id_is_a_clean_error(app, study, tmp_path):
    res = CliRunner().invoke(score, ["--study-id", "999", "--out", str(tmp_path)], obj={"app": app})
    assert res.exit_code == 1 and "no such study" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(score, ["--study-id", str(study.id), "--out", str(tmp_path)], obj={"app": app})
    assert res.exit_code == 1 and "no complete interviews" in res.output
