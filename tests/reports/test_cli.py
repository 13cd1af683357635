"""``cati report …`` / ``cati export`` on the file paths (no database needed)."""

from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from cati.cli.report import export, report


@pytest.fixture(scope="module")
def responses_csv(responses, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "responses.csv"
    df = responses.copy()
    df["OPEN1"] = "希望少转接几次"
    df.to_csv(path, index=False)
    return path


def _run(cmd, args):
    res = CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)
    return res


def test_industry_from_responses_csv(responses_csv, tmp_path):
    res = _run(report, ["industry", "--responses", responses_csv, "--out", tmp_path, "--format", "xlsx",
                        "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    wb = load_workbook(tmp_path / "industry_report.zh-CN.xlsx")
    assert len(list(wb["企业得分"].iter_rows(min_row=2))) == 12


def test_industry_from_scores_folder_matches_the_scores(result, tmp_path):
    folder = tmp_path / "scores"
    result.write(folder)
    res = _run(report, ["industry", "--from-scores", folder, "--out", tmp_path, "--format", "xlsx",
                        "--format", "html", "--lang", "en"])
    assert res.exit_code == 0, res.output
    ws = load_workbook(tmp_path / "industry_report.en.xlsx")["Enterprises"]
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    got = {r[header.index("enterprise_id")]: r[header.index("composite")] for r in rows[1:]}
    for e in result.enterprises.itertuples():
        assert got[e.enterprise_id] == pytest.approx(e.composite, abs=1e-9)


def test_enterprise_command_needs_ids_or_all(responses_csv, tmp_path):
    res = CliRunner().invoke(report, ["enterprise", "--responses", str(responses_csv), "--out", str(tmp_path)])
    assert res.exit_code != 0 and "--all" in res.output


def test_enterprise_reports_with_verbatims_from_the_csv(responses_csv, tmp_path):
    res = _run(report, ["enterprise", "E0001", "E0002", "--responses", responses_csv, "--out", tmp_path,
                        "--format", "html", "--n-boot", "0", "--workers", "1"])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "enterprise_E0001.zh-CN.html").read_text(encoding="utf-8")
    assert "希望少转接几次" in html
    assert not (tmp_path / "enterprise_E0003.zh-CN.html").exists()


def test_unknown_enterprise_is_a_clean_error(responses_csv, tmp_path):
    res = CliRunner().invoke(report, ["enterprise", "NOPE", "--responses", str(responses_csv), "--out",
                                      str(tmp_path), "--n-boot", "0"])
    assert res.exit_code == 1 and "NOPE" in res.output and "Traceback" not in res.output


def test_one_source_only(responses_csv, result, tmp_path):
    folder = tmp_path / "scores"
    result.write(folder)
    res = CliRunner().invoke(report, ["industry", "--responses", str(responses_csv), "--from-scores", str(folder)])
    assert res.exit_code == 2 and "give one of" in res.output


def test_fieldwork_from_files(fieldwork, tmp_path):
    cases, attempts, _ = fieldwork
    cases.to_csv(tmp_path / "cases.csv", index=False)
    attempts.to_csv(tmp_path / "attempts.csv", index=False)
    res = _run(report, ["fieldwork", "--cases", tmp_path / "cases.csv", "--attempts", tmp_path / "attempts.csv",
                        "--out", tmp_path, "--format", "html"])
    assert res.exit_code == 0, res.output
    assert "RR3" in (tmp_path / "fieldwork_report.zh-CN.html").read_text(encoding="utf-8")


def test_export_sav_from_csv_and_phone_flag_needs_database(responses_csv, tmp_path):
    res = _run(export, ["--responses", responses_csv, "--out", tmp_path, "--format", "sav"])
    assert res.exit_code == 0, res.output
    data, meta = pyreadstat.read_sav(str(tmp_path / "responses.sav"), user_missing=True)
    src = pd.read_csv(responses_csv)
    assert (data["A1"].fillna(-1).to_numpy() == src["A1"].fillna(-1).to_numpy()).all()
    assert meta.variable_value_labels["A1"][5] == "非常满意"
    res = CliRunner().invoke(export, ["--responses", str(responses_csv), "--out", str(tmp_path), "--include-phone"])
    assert res.exit_code == 2 and "admin" in res.output
