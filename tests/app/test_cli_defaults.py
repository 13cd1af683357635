"""The command line as a user meets it: report and export find the database's study by themselves, an import with
nothing rejected leaves no rejects file beside its input, and progress in a log is not a stream of updates."""

from __future__ import annotations

import io
import sys

from click.testing import CliRunner

from cati.cli.common import progress_bar
from tests.reports.test_cli_database import db_study, stored  # noqa: F401 - fixtures: a study with completes


def test_report_and_export_use_the_databases_study_without_study_id(app, db_study, stored, tmp_path):  # noqa: F811
    from cati.cli.report import export, report

    runner = CliRunner()
    res = runner.invoke(report, ["fieldwork", "--format", "html", "--out", str(tmp_path / "fw")],
                        obj={"app": app}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert list((tmp_path / "fw").glob("*.html"))
    res = runner.invoke(export, ["--format", "csv", "--no-paradata", "--out", str(tmp_path / "ex")], obj={"app": app},
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ex" / "responses.csv").exists()


def test_an_import_without_rejects_leaves_no_rejects_file(app, db_study, tmp_path):  # noqa: F811
    from cati.cli.imports import enterprises

    src = tmp_path / "enterprises.csv"
    src.write_text("enterprise_id,name,industry,province\nE1,招商银行,银行,广东\n", encoding="utf-8")
    res = CliRunner().invoke(enterprises, [str(src)], obj={"app": app}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "enterprises.csv.rejects.csv").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("enterprise_id,name,industry,province\n,无编号,银行,广东\n", encoding="utf-8")
    CliRunner().invoke(enterprises, [str(bad)], obj={"app": app}, catch_exceptions=False)
    assert (tmp_path / "bad.csv.rejects.csv").exists()  # rejects: the file is written


def test_progress_in_a_log_is_a_few_lines_not_hundreds_of_updates(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with progress_bar(total=5000, desc="completes", file=log) as bar:
        for _ in range(5000):
            bar.update(1)
    assert log.getvalue().count("\r") <= 3
