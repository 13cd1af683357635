"""``publishing.build_all``: one path from the database to every product (the CLI, the demo and the web jobs)."""

from __future__ import annotations

import pytest

from cati.db import transaction
from cati.models import Study
from cati.services import frames, publishing
from tests.reports.test_cli_database import db_study, stored  # noqa: F401 - fixtures: 6 enterprises × 8 completes


def test_build_all_writes_every_product_in_its_folder(db_study, stored, session_factory, tmp_path):  # noqa: F811
    with transaction(session_factory) as s:
        study = s.get(Study, db_study.id)
        built = publishing.build_all(s, study, tmp_path, formats=("html", "xlsx", "csv"), n_boot=50, seed=3)
        rates = frames.rates(frames.dispositions_frame(s, study)).iloc[0]
    assert built.errors == {}
    assert list(built.products) == list(publishing.PRODUCTS)
    assert built.products["enterprise"]["files"] == 6 * 2  # html + xlsx for each of the 6 enterprises
    assert sorted(p.name for p in (tmp_path / "enterprises").iterdir())[0].startswith("enterprise_")
    assert (tmp_path / "data" / "responses.csv").exists() and (tmp_path / "data" / "call_history.csv").exists()
    assert not list((tmp_path / "data").glob("*.sav"))  # not asked for
    assert any(p.suffix == ".html" and "industry" in p.name for p in tmp_path.iterdir())
    assert built.rates["RR1"] == pytest.approx(float(rates["RR1"]), abs=1e-4) == 1.0  # every case a complete
    assert 0 < built.overall["composite"] <= 100


def test_a_failing_product_is_reported_and_the_others_are_written(db_study, stored, session_factory, tmp_path,  # noqa: F811
                                                                  monkeypatch):
    import reports.fieldwork

    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports.fieldwork, "build_fieldwork_report", broken)
    seen = []
    with transaction(session_factory) as s:
        built = publishing.build_all(s, s.get(Study, db_study.id), tmp_path, products=("fieldwork", "exports"),
                                     formats=("csv",), on_product=lambda name, info, error: seen.append(name))
    assert built.errors == {"fieldwork": "RuntimeError: disk full"}
    assert list(built.products) == ["exports"] and seen == ["fieldwork", "exports"]


def test_no_completes_yet_is_a_reason_not_a_crash(db_study, session_factory, tmp_path):  # noqa: F811
    with transaction(session_factory) as s:
        built = publishing.build_all(s, s.get(Study, db_study.id), tmp_path, products=("industry", "fieldwork"),
                                     formats=("html",))
        with pytest.raises(ValueError, match="unknown product"):
            publishing.build_all(s, s.get(Study, db_study.id), tmp_path, products=("everything",))
    assert "no complete interviews yet" in built.errors["industry"]
    assert "fieldwork" in built.products
