"""``cati report`` / ``cati export`` on the database path (SQLite always, PostgreSQL when configured):
interviews stored with the models, read back through ``cati.services.frames``, scored and reported."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pyreadstat
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from cati.db import transaction
from cati.models import Answer as AnswerRow
from cati.models import Case, CasePhone, CaseStatus, Interview, InterviewStatus, Role
from scoring import score_study
from scoring.spec import ScoringSpec
from scoring.synthetic import make_synthetic_responses
from tests import factories

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
ITEM_CODES = [f"{b}{i}" for b, n in zip("ABCDEF", (4, 4, 4, 3, 3, 4), strict=True) for i in range(1, n + 1)]


@pytest.fixture
def db_study(session_factory):
    """The default study installed in the database (the package conftest's ``study`` is the raw mapping)."""
    from cati.services.studies import install_study
    from tests.conftest import STUDY_FILE

    with transaction(session_factory) as s:
        return install_study(s, STUDY_FILE)


@pytest.fixture
def stored(app, db_study, session_factory):
    study = db_study
    """6 enterprises × 8 complete interviews with synthetic answers; returns the frame that was stored."""
    df = make_synthetic_responses(n_enterprises=6, n_industries=2, n_respondents=48, seed=21)
    stored_rows = []
    with transaction(session_factory) as s:
        admin = factories.user(s, Role.ADMIN, username="boss", password="boss-password-1")
        iv = factories.user(s, Role.INTERVIEWER, username="iv9")
        ents = {}
        for eid, grp in df.groupby("enterprise_id", sort=True):
            ent = factories.enterprise(s, study, name=grp["enterprise_name"].iloc[0],
                                       industry_name=grp["industry"].iloc[0])
            ents[eid] = ent
            for k, (_, row) in enumerate(grp.iterrows()):
                case = Case(study_id=study.id, enterprise_id=ent.id, case_ref=f"{eid}-{k}", status=CaseStatus.FINAL,
                            final_disposition="1.1", attempts=1, attributes={}, imported_at=T0, finalized_at=T0)
                case.phones.append(CasePhone(study_id=study.id, e164=f"+8613800{len(stored_rows):06d}", position=1))
                s.add(case)
                s.flush()
                ivw = Interview(study_id=study.id, case_id=case.id, interviewer_id=iv.id,
                                status=InterviewStatus.COMPLETE, started_at=T0, ended_at=T0)
                for code in [*ITEM_CODES, "D0", "Q0", "CB1"]:
                    v = row[code]
                    if not pd.isna(v):
                        ivw.answers.append(AnswerRow(question_code=code, value_code=int(v), answered_at=T0))
                ivw.answers.append(AnswerRow(question_code="OPEN1", value_text=f"请回电{case.phones[0].e164[3:]}",
                                             answered_at=T0))
                s.add(ivw)
                out = row.copy()
                out["enterprise_id"] = ent.external_id
                stored_rows.append(out)
        del admin
    return pd.DataFrame(stored_rows).reset_index(drop=True)


def _invoke(app, cmd, args, **kw):
    return CliRunner().invoke(cmd, [str(a) for a in args], obj={"app": app}, catch_exceptions=False, **kw)


def test_industry_and_enterprise_reports_from_the_database(app, db_study, stored, tmp_path):
    from cati.cli.report import report

    study = db_study
    res = _invoke(app, report, ["industry", "--study-id", study.id, "--out", tmp_path, "--format", "xlsx",
                                "--n-boot", "0"])
    assert res.exit_code == 0, res.output
    expected = score_study(stored, ScoringSpec.from_study(study.definition), n_boot=0)
    ws = load_workbook(tmp_path / "industry_report.zh-CN.xlsx")["企业得分"]
    rows = list(ws.iter_rows(values_only=True))
    got = {r[rows[0].index("enterprise_id")]: r[rows[0].index("composite")] for r in rows[1:]}
    for e in expected.enterprises.itertuples():
        assert math.isclose(got[e.enterprise_id], e.composite, abs_tol=1e-9)
    res = _invoke(app, report, ["enterprise", "--all", "--study-id", study.code, "--out", tmp_path,
                                "--format", "html", "--n-boot", "0", "--workers", "1"])
    assert res.exit_code == 0, res.output
    html = (tmp_path / f"enterprise_{expected.enterprises.enterprise_id.iloc[0]}.zh-CN.html").read_text("utf-8")
    assert "请回电" in html and "138****" in html  # verbatims from the database, number masked


def test_export_masks_phones_unless_an_admin_asks(app, db_study, stored, tmp_path):
    from cati.cli.report import export

    study = db_study
    res = _invoke(app, export, ["--study-id", study.id, "--out", tmp_path / "a", "--format", "sav"])
    assert res.exit_code == 0, res.output
    data, meta = pyreadstat.read_sav(str(tmp_path / "a" / "responses.sav"))
    assert len(data) == len(stored) and "phone" not in data.columns
    assert not data["OPEN1"].str.contains(r"\d{11}").any()
    assert meta.column_names_to_labels["Q0"].startswith("总体而言")
    res = CliRunner().invoke(export, ["--study-id", str(study.id), "--out", str(tmp_path / "b"), "--include-phone",
                                      "--admin", "iv9"], obj={"app": app}, input="password-123\n")
    assert res.exit_code == 1 and "not an admin" in res.output
    res = _invoke(app, export, ["--study-id", study.id, "--out", tmp_path / "c", "--format", "csv",
                                "--include-phone", "--admin", "boss"], input="boss-password-1\n")
    assert res.exit_code == 0, res.output
    full = pd.read_csv(tmp_path / "c" / "responses.csv", encoding="utf-8-sig", dtype=str)
    assert full["phone"].str.fullmatch(r"\+8613800\d{6}").all()


def test_fieldwork_report_from_the_database(app, db_study, stored, tmp_path):
    from cati.cli.report import report

    study = db_study
    res = _invoke(app, report, ["fieldwork", "--study-id", study.id, "--out", tmp_path, "--format", "xlsx"])
    assert res.exit_code == 0, res.output
    wb = load_workbook(tmp_path / "fieldwork_report.zh-CN.xlsx")
    disp = {r[0]: r[3] for r in wb["处理结果"].iter_rows(min_row=2, values_only=True)}
    assert disp == {"1.1": len(stored)}
