"""``cati demo`` end to end on a tiny study: fieldwork, scores, every report and summary.json."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from click.testing import CliRunner


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="the patch reaches a forked child")
def test_demo_writes_every_report_and_a_failing_data_export_does_not_lose_the_others(tmp_path, monkeypatch):
    # The data exports run in a second process while the parent scores and builds the reports; a failure there is
    # noted like any other (here the call-history export), and the summary lists the reports in their usual order.
    from cati.cli import main
    from reports import exports

    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "export_paradata", broken)
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--enterprises", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["quotas_filled"] and summary["completes"] == summary["quota_total"] == 40
    assert list(summary["reports"]) == ["scores", "industry", "enterprise", "fieldwork", "exports"]
    assert summary["report_errors"] == {"paradata": "RuntimeError: disk full"}
    assert summary["reports"]["enterprise"]["files"] == 2
    assert (out / "reports" / "data" / "responses.csv").exists()
    assert not (out / "reports" / "data" / "call_history.csv").exists()
    assert "paradata: FAILED (RuntimeError: disk full)" in result.output
    assert set(summary["timings"]) == {"fieldwork_seconds", "reports_seconds", "total_seconds"}
