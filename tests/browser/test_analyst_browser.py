"""The analyst in a real browser (Playwright + Debian chromium) against ``cati serve`` itself (the built-in server
with its in-process job worker): from finished fieldwork to the industry PDF and the SPSS file, without the
command line, and the downloaded figures checked against the scoring service's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import AuditLog, Role, Study
from tests import factories

from .conftest import ROOT, SCREENSHOTS, STUDY_FILE, _free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def finished(tmp_path):
    """A study whose fieldwork is finished (24 enterprises, 4 industries, 480 completes), an analyst (lin), and
    ``cati serve`` running on it."""
    db_url = f"sqlite:///{tmp_path / 'cati.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    from cati.services.studies import install_study

    with transaction(factory) as s:
        study = install_study(s, STUDY_FILE)
        factories.finished_fieldwork(s, study, enterprises=24, industries=4, completes=480, seed=5)
        factories.user(s, Role.ANALYST, username="lin", display_name="林分析")
        study_id = study.id
    port = _free_port()
    instance = tmp_path / "instance"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")}, "CATI_DATABASE_URL": db_url,
           "CATI_INSTANCE_PATH": str(instance), "CATI_SECRET_KEY": "browser-test-secret",
           "CATI_TELEPHONY": "simulated"}
    instance.mkdir(parents=True, exist_ok=True)
    log = open(instance / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "cati", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((instance / "serve.log").read_text()[-3000:])
        time.sleep(0.2)
    yield {"url": url, "factory": factory, "study_id": study_id, "tmp": tmp_path, "log": instance / "serve.log"}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    engine.dispose()


def _pause(page, ms: int = 150) -> None:
    page.wait_for_timeout(ms)


def _wait_for_job(page, url: str, timeout_s: float = 240) -> None:
    """The job's row shows done (the page polls and reloads itself when a job ends)."""
    page.wait_for_selector("#job-table tr[data-job]:first-child[data-status=done]", timeout=timeout_s * 1000)


def test_analyst_goes_from_finished_fieldwork_to_the_industry_pdf_and_the_sav(browser, finished):
    from pypdf import PdfReader

    from cati.services import releases
    from cati.services.frames import responses_frame
    from scoring import ScoringSpec, score_study

    url = finished["url"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(url + "/login")
    page.focus("#username")
    page.keyboard.type("lin", delay=30)
    page.keyboard.press("Tab")
    page.keyboard.type("password-123", delay=30)
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/analyst")  # an analyst lands in the workspace

    # live scores, with the chart drawn
    live_composite = page.inner_text("#overall-composite")
    page.click("text=企业")
    page.wait_for_selector("#caterpillar[data-drawn='1']")
    page.hover("#caterpillar canvas", position={"x": 300, "y": 200})
    _pause(page, 300)
    page.screenshot(path=str(SCREENSHOTS / "analyst-enterprises.png"), full_page=False)

    # freeze a release
    page.click("a.tab:has-text('发布版本')")
    page.focus("#release-name")
    page.keyboard.type("2026 年度终版", delay=20)
    page.fill("input[name=n_boot]", "200")
    page.fill("input[name=seed]", "11")
    _pause(page)
    page.click("#release-create")
    page.wait_for_url(re.compile(r".*/analyst\?release=\d+$"))
    rid = int(page.url.rsplit("=", 1)[1])
    assert "2026 年度终版" in page.inner_text("#source-note")
    release_composite = page.inner_text("#overall-composite")

    # the scoring service's figures for the same completes, seed and replicate count
    with transaction(finished["factory"]) as s:
        study = s.get(Study, finished["study_id"])
        frame = responses_frame(s, study.id)
        spec = ScoringSpec.from_study(study.definition)
        expected = score_study(frame, spec, n_boot=200, seed=11)
        live = score_study(frame, spec, seed=releases.LIVE_SEED)
    assert release_composite == f"{expected.overall['composite']:.2f}"
    assert live_composite == f"{live.overall['composite']:.2f}"

    # the industry report as PDF, in the background
    page.click("a.tab:has-text('报告与导出')")
    page.select_option("#job-product", "industry")
    page.check("#fmt-pdf")
    _pause(page)
    page.click("#job-start")
    page.wait_for_selector("#job-table tr[data-job]")
    page.wait_for_selector("#job-table .progress")
    _wait_for_job(page, url)
    with page.expect_download() as dl:
        page.click("#job-table tr[data-job]:first-child a.dl:has-text('industry_report.zh-CN.pdf')")
    pdf_path = finished["tmp"] / "industry.pdf"
    dl.value.save_as(pdf_path)

    # the data as SPSS
    page.select_option("#job-product", "exports")
    page.uncheck("#fmt-pdf")
    page.check("#fmt-sav")
    _pause(page)
    page.click("#job-start")
    _wait_for_job(page, url)
    page.screenshot(path=str(SCREENSHOTS / "analyst-jobs.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#job-table tr[data-job]:first-child a.dl:has-text('responses.sav')")
    sav_path = finished["tmp"] / "responses.sav"
    dl.value.save_as(sav_path)

    # every enterprise's report as PDF, downloaded at once
    page.select_option("#job-product", "enterprise")
    page.uncheck("#fmt-sav")
    page.check("#fmt-pdf")
    _pause(page)
    page.click("#job-start")
    page.wait_for_selector("#job-table tr[data-job]:first-child[data-status=running]", timeout=60_000)
    _wait_for_job(page, url)
    with page.expect_download() as dl:
        page.click("#job-table tr[data-job]:first-child a.dl-all")
    zip_path = finished["tmp"] / "enterprises.zip"
    dl.value.save_as(zip_path)
    ctx.close()

    # the PDF states the release's overall score, industry scores and method (release, seed, replicates)
    text = "".join(p.extract_text() for p in PdfReader(str(pdf_path)).pages)
    flat = re.sub(r"\s+", "", text)
    assert f"{expected.overall['composite']:.2f}" in flat
    for r in expected.industries.itertuples():
        assert f"{r.composite:.2f}" in flat, r.industry
    assert "2026年度终版" in flat and "11" in flat and "200" in flat
    # the .sav holds the release's completes: scored again, they give the scoring service's figures
    import pyreadstat

    sav, meta = pyreadstat.read_sav(str(sav_path), user_missing=True)
    assert len(sav) == 480 and meta.column_names_to_labels["A1"]
    rescored = score_study(sav.astype({"respondent_id": str, "enterprise_id": str}), spec, n_boot=0)
    assert rescored.overall["composite"] == pytest.approx(expected.overall["composite"], abs=1e-9)
    pd.testing.assert_series_equal(
        rescored.enterprises.set_index("enterprise_id")["composite"],
        expected.enterprises.set_index("enterprise_id")["composite"], check_exact=False, atol=1e-9)
    # both files are the CLI's for this release, byte for byte
    from cati.services import publishing

    with transaction(finished["factory"]) as s:
        study = s.get(Study, finished["study_id"])
        rel = releases.release_row(s, study, rid)
        publishing.build_all(s, study, finished["tmp"] / "cli", release=rel, products=("industry", "exports"),
                             formats={"industry": ("pdf",), "exports": ("sav",)})
        downloads = [a.after["file"] for a in s.query(AuditLog).filter_by(action="download").order_by(AuditLog.id)]
    assert pdf_path.read_bytes() == (finished["tmp"] / "cli" / "industry_report.zh-CN.pdf").read_bytes()
    assert sav_path.read_bytes() == (finished["tmp"] / "cli" / "data" / "responses.sav").read_bytes()
    assert downloads == ["industry_report.zh-CN.pdf", "responses.sav", "all.zip"]
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(zf.namelist())
        assert names == sorted(f"enterprise_{e}.zh-CN.pdf" for e in expected.enterprises["enterprise_id"])
        one = expected.enterprises.iloc[0]
        zf.extract(f"enterprise_{one.enterprise_id}.zh-CN.pdf", finished["tmp"])
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(
        str(finished["tmp"] / f"enterprise_{one.enterprise_id}.zh-CN.pdf")).pages))
    assert f"{one.composite:.2f}" in text and str(one.enterprise_name) in text
    assert Path(finished["log"]).read_text().count("worker running") == 1
