"""The analyst's workspace: every page per role, the figures against scoring's, releases, report/export jobs with
their downloads (the CLI's bytes), phone numbers, audit, and jobs surviving a restart of the worker."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from sqlalchemy import select

from cati.db import transaction
from cati.models import AnalysisJob, AuditLog, Enterprise, JobStatus, Role, Study
from cati.services import jobs as job_service
from cati.services import publishing, releases
from scoring import ScoringSpec, score_study
from tests.reports.test_cli_database import db_study, stored  # noqa: F401 - fixtures: 6 enterprises × 8 completes
from tests.web.conftest import csrf_of, fast_user, login

PAGES = ["/analyst", "/analyst/industries", "/analyst/enterprises", "/analyst/drivers", "/analyst/drivers?level=item",
         "/analyst/releases", "/analyst/jobs"]


@pytest.fixture
def aworld(app, db_study, stored, session_factory):  # noqa: F811
    """The stored study with provinces and one user of each role (password "password-123")."""
    releases.clear_caches()
    with transaction(session_factory) as s:
        for k, ent in enumerate(s.scalars(select(Enterprise).order_by(Enterprise.id))):
            ent.province = "广东" if k % 2 else "江苏"
        for name, role in (("ana", Role.ANALYST), ("sup", Role.SUPERVISOR), ("adm", Role.ADMIN),
                           ("ivw", Role.INTERVIEWER)):
            fast_user(s, name, role)
        second = s.scalars(select(Enterprise).order_by(Enterprise.id)).all()[1]  # in 广东
        out = {"study_id": db_study.id, "eid": second.external_id, "industry": second.industry.name}
    return out


def _expected(session_factory, study_id, **kw):
    from cati.services.frames import responses_frame

    with transaction(session_factory) as s:
        study = s.get(Study, study_id)
        frame = responses_frame(s, study_id)
        return score_study(frame, ScoringSpec.from_study(study.definition), **kw)


@pytest.mark.parametrize("role", ["ana", "sup", "adm"])
def test_every_page_answers_for_analysts_supervisors_and_admins(client, aworld, role):
    assert login(client, role).status_code == 302
    for path in [*PAGES, f"/analyst/enterprises/{aworld['eid']}", f"/analyst/industries/{aworld['industry']}"]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert "Server-Timing" in r.headers


def test_an_interviewer_gets_403_on_every_page_and_download_and_a_stranger_is_sent_to_sign_in(
        client, app, aworld, session_factory):
    with transaction(session_factory) as s:
        job = AnalysisJob(study_id=aworld["study_id"], product="industry", formats=["pdf"], lang="zh-CN",
                          status=JobStatus.DONE, files=["industry_report.zh-CN.pdf"], total=1, done=1)
        s.add(job)
        s.flush()
        jid = job.id
    paths = [*PAGES, f"/analyst/enterprises/{aworld['eid']}", f"/analyst/industries/{aworld['industry']}",
             f"/analyst/jobs/{jid}.json", f"/analyst/jobs/{jid}/files/industry_report.zh-CN.pdf",
             f"/analyst/jobs/{jid}/all.zip"]
    for path in paths:
        assert client.get(path).status_code == 302  # signed out: to the sign-in page
    login(client, "ivw")
    for path in paths:
        assert client.get(path).status_code == 403, path
    token = csrf_of(client, "/interviewer")
    assert client.post("/analyst/releases", data={"name": "x", "n_boot": 0, "seed": 0,
                                                  "csrf_token": token}).status_code == 403
    assert client.post("/analyst/jobs", data={"product": "industry", "formats": "pdf",
                                              "csrf_token": token}).status_code == 403
    with transaction(session_factory) as s:
        assert s.scalar(select(AuditLog).where(AuditLog.action == "download")) is None


def test_overall_industries_and_enterprises_show_scorings_figures(client, aworld, session_factory):
    expected = _expected(session_factory, aworld["study_id"], seed=releases.LIVE_SEED)
    login(client, "ana")
    html = client.get("/analyst").get_data(as_text=True)
    assert f'id="overall-composite">{expected.overall["composite"]:.2f}<' in html
    assert f'{expected.overall["ci_low"]:.2f}–{expected.overall["ci_high"]:.2f}' in html
    assert f'A1 {expected.overall["A1"]:.2f} (n = {int(expected.overall["n_A1"])})' in html  # item bases
    html = client.get("/analyst/industries").get_data(as_text=True)
    for r in expected.industries.itertuples():
        assert f"{r.composite:.2f}" in html and f"{r.rank_low}–{r.rank_high}" in html
    # enterprises: filtered by industry and province, sorted by score (highest first)
    ind = aworld["industry"]
    html = client.get(f"/analyst/enterprises?industry={ind}&province=广东&sort=composite&dir=desc").get_data(
        as_text=True)
    ent = expected.enterprises
    rows = re.findall(r'<tr data-id="([^"]+)">', html)
    with transaction(session_factory) as s:
        provinces = {e.external_id: e.province for e in s.scalars(select(Enterprise))}
    want = ent[(ent["industry"] == ind) & ent["enterprise_id"].map(provinces).eq("广东")]
    assert rows == list(want.sort_values("composite", ascending=False)["enterprise_id"])
    assert rows  # the filter keeps some
    top = want.sort_values("composite", ascending=False).iloc[0]
    assert f"{top.composite_eb:.2f}" in html  # the empirical-Bayes score beside it


def test_one_enterprise_against_industry_all_and_province_with_verbatims_masked(client, aworld, session_factory):
    from reports.enterprise import comparison_frame, prepare

    expected = _expected(session_factory, aworld["study_id"], seed=releases.LIVE_SEED)
    login(client, "ana")
    html = client.get(f"/analyst/enterprises/{aworld['eid']}").get_data(as_text=True)
    row = expected.enterprises.set_index("enterprise_id").loc[aworld["eid"]]
    assert f"{row.composite:.2f}" in html
    data = prepare(publishing.with_provinces(expected, _frame(session_factory, aworld)), {"title": ""},
                   lang="zh-CN")
    lv2 = comparison_frame(data, aworld["eid"], 2)
    b1 = lv2.set_index("code").loc["B1"]
    assert f"{b1.industry:.2f}" in html and f"{b1.province:.2f}" in html  # 本行业 and 本省份
    assert "本省份" in html and "本行业" in html and "全行业" in html
    verbatims = re.search(r'<ul class="verbatims" id="verbatims">(.*?)</ul>', html, re.S).group(1)
    assert verbatims.count("<li>") == 8 and "请回电" in verbatims
    assert not re.search(r"\d{11}", verbatims)  # numbers in open answers are masked
    assert client.get("/analyst/enterprises/NOPE").status_code == 404
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_of(client, "/analyst"), "next": "/analyst"})
    assert "Strongest items" in client.get(f"/analyst/enterprises/{aworld['eid']}").get_data(as_text=True)


def _frame(session_factory, aworld):
    from cati.services.frames import responses_frame

    with transaction(session_factory) as s:
        return responses_frame(s, aworld["study_id"])


def _release(client, name="2026 终版", n_boot=30, seed=5):
    token = csrf_of(client, "/analyst/releases")
    return client.post("/analyst/releases", data={"name": name, "n_boot": n_boot, "seed": seed, "csrf_token": token})


def test_a_release_is_frozen_from_the_page_and_its_industry_pdf_is_the_clis_file(client, app, aworld,
                                                                                  session_factory, tmp_path):
    login(client, "ana")
    r = _release(client)
    assert r.status_code == 302 and "release=" in r.headers["Location"]
    again = _release(client)
    assert again.headers["Location"].endswith("/analyst/releases")
    assert "已有名为“2026 终版”的发布版本" in client.get("/analyst/releases").get_data(as_text=True)
    with transaction(session_factory) as s:
        rel = releases.releases(s, s.get(Study, aworld["study_id"]))[0]
        rid, n_boot, seed = rel.id, rel.n_boot, rel.seed
    assert (n_boot, seed) == (30, 5)
    html = client.get(f"/analyst?release={rid}").get_data(as_text=True)
    assert "2026 终版" in html and "种子 5" in html
    token = csrf_of(client, "/analyst/jobs")
    r = client.post("/analyst/jobs", data={"product": "industry", "formats": ["pdf", "xlsx"], "lang": "zh-CN",
                                           "release": rid, "csrf_token": token})
    assert r.status_code == 302
    with transaction(session_factory) as s:
        job = s.scalars(select(AnalysisJob)).one()
        assert job.status == JobStatus.QUEUED and job.release_id == rid
        jid = job.id
    assert client.get(f"/analyst/jobs/{jid}.json").get_json()["status"] == "queued"
    assert job_service.run_pending(app) == 1
    state = client.get(f"/analyst/jobs/{jid}.json").get_json()
    assert state["status"] == "done", state
    assert state["files"] == ["industry_report.zh-CN.pdf", "industry_report.zh-CN.xlsx"]
    got = client.get(f"/analyst/jobs/{jid}/files/industry_report.zh-CN.pdf")
    assert got.status_code == 200 and got.data[:4] == b"%PDF"
    with transaction(session_factory) as s:
        study = s.get(Study, aworld["study_id"])
        publishing.build_all(s, study, tmp_path / "cli", release=releases.release_row(s, study, rid),
                             products=("industry",), formats={"industry": ("pdf", "xlsx")}, layout={"industry": ""})
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "download")).all()
    assert got.data == (tmp_path / "cli" / "industry_report.zh-CN.pdf").read_bytes()
    # and `cati report industry --release` writes that same file
    from click.testing import CliRunner

    from cati.cli.report import report

    res = CliRunner().invoke(report, ["industry", "--release", "2026 终版", "--format", "pdf", "--out",
                                      str(tmp_path / "cmd")], obj={"app": app}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert got.data == (tmp_path / "cmd" / "industry_report.zh-CN.pdf").read_bytes()
    res = CliRunner().invoke(report, ["industry", "--release", "nope", "--out", str(tmp_path / "x")],
                             obj={"app": app})
    assert res.exit_code != 0 and "no such release" in res.output
    xlsx = client.get(f"/analyst/jobs/{jid}/files/industry_report.zh-CN.xlsx").data
    assert xlsx == (tmp_path / "cli" / "industry_report.zh-CN.xlsx").read_bytes()
    assert [a.after["file"] for a in audits] == ["industry_report.zh-CN.pdf"]
    assert client.get(f"/analyst/jobs/{jid}/files/../../jobs.sqlite").status_code == 404
    page = client.get("/analyst/jobs").get_data(as_text=True)
    assert "industry_report.zh-CN.pdf" in page and "已完成" in page


def test_a_failed_job_shows_its_reason(client, app, aworld, session_factory, monkeypatch):
    import reports.fieldwork

    def broken(*_a, **_k):
        raise RuntimeError("磁盘已满 disk full")

    monkeypatch.setattr(reports.fieldwork, "build_fieldwork_report", broken)
    login(client, "sup")
    client.post("/analyst/jobs", data={"product": "fieldwork", "formats": ["html"],
                                       "csrf_token": csrf_of(client, "/analyst/jobs")})
    job_service.run_pending(app)
    page = client.get("/analyst/jobs").get_data(as_text=True)
    assert "失败" in page and "RuntimeError: 磁盘已满 disk full" in page


def test_phone_numbers_only_for_an_admin_who_types_the_password(client, app, aworld, session_factory):
    login(client, "adm")
    token = csrf_of(client, "/analyst/jobs")
    base = {"product": "exports", "formats": ["csv"], "include_phone": "1", "csrf_token": token}
    r = client.post("/analyst/jobs", data={**base, "admin_password": "wrong"}, follow_redirects=True)
    assert "号码保持打码" in r.get_data(as_text=True)
    with transaction(session_factory) as s:
        assert s.scalars(select(AnalysisJob)).first() is None
    client.post("/analyst/jobs", data={**base, "admin_password": "password-123"})
    client.post("/analyst/jobs", data={"product": "exports", "formats": ["csv"], "csrf_token": token})
    job_service.run_pending(app)
    with transaction(session_factory) as s:
        full, masked = s.scalars(select(AnalysisJob).order_by(AnalysisJob.id)).all()
        assert full.include_phone and not masked.include_phone
    a = pd.read_csv(job_service.job_file(app, full, "responses.csv"), dtype=str)
    b = pd.read_csv(job_service.job_file(app, masked, "responses.csv"), dtype=str)
    assert a["phone"].str.match(r"^\+8613800\d{6}$").all()
    assert "phone" not in b.columns or not b["phone"].str.match(r"^\+86\d{11}$").any()
    # an analyst cannot ask for phones at all: the box is ignored
    client.post("/logout", data={"csrf_token": token})
    login(client, "ana")
    client.post("/analyst/jobs", data={**base, "csrf_token": csrf_of(client, "/analyst/jobs"),
                                       "admin_password": "password-123"})
    with transaction(session_factory) as s:
        assert s.scalars(select(AnalysisJob).order_by(AnalysisJob.id.desc())).first().id == masked.id


def test_jobs_survive_a_restart_of_the_worker(client, app, aworld, session_factory):
    login(client, "ana")
    token = csrf_of(client, "/analyst/jobs")
    client.post("/analyst/jobs", data={"product": "exports", "formats": ["sav"], "csrf_token": token})
    # the server stops: a new process opens the same queue file and finds the job waiting
    job_service._hueys.clear()
    job_service._tasks.clear()
    assert job_service.recover(app) == []  # still on the queue: not put there twice
    assert job_service.run_pending(app) == 1
    # a job that was running when its worker died is put back on the queue and finished
    with transaction(session_factory) as s:
        job = AnalysisJob(study_id=aworld["study_id"], product="exports", formats=["csv"], lang="zh-CN",
                          status=JobStatus.RUNNING, done=0, total=1)
        s.add(job)
        s.flush()
        lost = job.id
    assert job_service.recover(app) == [lost]
    job_service.run_pending(app)
    with transaction(session_factory) as s:
        assert [j.status for j in s.scalars(select(AnalysisJob).order_by(AnalysisJob.id))] == [JobStatus.DONE] * 2


def test_one_release_gives_the_same_numbers_on_the_page_in_the_pdf_and_in_the_xlsx(client, app, aworld,
                                                                                    session_factory):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    login(client, "ana")
    _release(client, name="R-page-pdf-xlsx", n_boot=25, seed=3)
    with transaction(session_factory) as s:
        rid = releases.releases(s, s.get(Study, aworld["study_id"]))[0].id
    page = client.get(f"/analyst/industries?release={rid}").get_data(as_text=True)
    shown = {m[0]: (m[1], m[2]) for m in re.findall(
        r'<a href="/analyst/industries/[^"]+">([^<]+)</a>.*?<td class="score">([\d.]+)</td><td>([\d.]+–[\d.]+)</td>',
        page, re.S)}
    assert len(shown) == 2
    client.post("/analyst/jobs", data={"product": "industry", "formats": ["pdf", "xlsx"], "release": rid,
                                       "csrf_token": csrf_of(client, "/analyst/jobs")})
    job_service.run_pending(app)
    with transaction(session_factory) as s:
        job = s.scalars(select(AnalysisJob)).one()
    wb = load_workbook(job_service.job_file(app, job, "industry_report.zh-CN.xlsx"), read_only=True)
    rows = list(wb.worksheets[1].iter_rows(values_only=True))
    head = list(rows[0])
    in_xlsx = {r[head.index("industry")]: (f"{r[head.index('composite')]:.2f}",
                                           f"{r[head.index('ci_low')]:.2f}–{r[head.index('ci_high')]:.2f}")
               for r in rows[1:] if r[head.index("industry")]}
    assert in_xlsx == shown
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(
        job_service.job_file(app, job, "industry_report.zh-CN.pdf")).pages))
    for industry, (score, interval) in shown.items():
        assert industry in text and score in text and interval in text
    assert "R-page-pdf-xlsx" in text


def test_enterprise_reports_of_chosen_enterprises_report_their_progress(client, app, aworld, session_factory):
    with transaction(session_factory) as s:
        ids = [e.external_id for e in s.scalars(select(Enterprise).order_by(Enterprise.id))][:2]
    login(client, "ana")
    client.post("/analyst/jobs", data={"product": "enterprise", "formats": ["html"], "enterprise_ids": ", ".join(ids),
                                       "csrf_token": csrf_of(client, "/analyst/jobs")})
    with transaction(session_factory) as s:
        jid = s.scalars(select(AnalysisJob)).one().id
    assert client.get(f"/analyst/jobs/{jid}.json").get_json()["total"] == 2
    job_service.run_pending(app)
    state = client.get(f"/analyst/jobs/{jid}.json").get_json()
    assert state["status"] == "done" and state["done"] == state["total"] == 2, state
    assert state["files"] == [f"enterprise_{i}.zh-CN.html" for i in ids]
    r = client.get(f"/analyst/jobs/{jid}/all.zip")
    assert r.status_code == 200 and r.data[:2] == b"PK"


def test_a_release_compares_with_last_waves_scores_on_the_page_and_in_the_enterprise_report(
        client, app, aworld, session_factory, tmp_path):
    eid = aworld["eid"]
    last_year = ("enterprise_id,enterprise_name,composite,A,B,C,D,E,F,A1\n"
                 f"{eid},去年的名字,71.25,70.5,72,73,74,75,76,61.5\nE9999,已退出的企业,80,80,80,80,80,80,80,80\n")
    login(client, "ana")
    token = csrf_of(client, "/analyst/releases")
    # a file that is not a scoring output is refused with its reason, and nothing is frozen
    bad = client.post("/analyst/releases", data={"name": "2026", "n_boot": 0, "seed": 0, "csrf_token": token,
                                                 "previous_file": (io.BytesIO(b"id,score\n1,2\n"), "scores.csv")},
                      content_type="multipart/form-data", follow_redirects=True)
    assert "missing column enterprise_id, composite" in bad.get_data(as_text=True)
    r = client.post("/analyst/releases", data={"name": "2026", "n_boot": 0, "seed": 0, "csrf_token": token,
                                               "previous_file": (io.BytesIO(last_year.encode("utf-8-sig")),
                                                                 "enterprise_scores_2025.csv")},
                    content_type="multipart/form-data")
    rid = int(r.headers["Location"].rsplit("=", 1)[1])
    html = client.get(f"/analyst/enterprises/{eid}?release={rid}").get_data(as_text=True)
    assert "本企业去年" in html and "enterprise_scores_2025.csv" in html
    level1 = re.search(r'<table class="data" id="level1">(.*?)</table>', html, re.S).group(1)
    assert '<td class="last">71.25</td>' in level1 and '<td class="last">70.50</td>' in level1
    assert '<td class="last">61.50</td>' in html  # item A1
    # live scores have no previous wave
    assert "本企业去年" not in client.get(f"/analyst/enterprises/{eid}").get_data(as_text=True)
    # the enterprise report of the release carries the column, as `cati report enterprise --release` writes it
    client.post("/analyst/jobs", data={"product": "enterprise", "formats": ["html"], "enterprise_ids": eid,
                                       "release": rid, "csrf_token": csrf_of(client, "/analyst/jobs")})
    job_service.run_pending(app)
    with transaction(session_factory) as s:
        job = s.scalars(select(AnalysisJob)).one()
    web = job_service.job_file(app, job, f"enterprise_{eid}.zh-CN.html").read_bytes()
    assert "本企业去年" in web.decode() and "71.25" in web.decode()
    from click.testing import CliRunner

    from cati.cli.report import report

    res = CliRunner().invoke(report, ["enterprise", eid, "--release", "2026", "--format", "html", "--out",
                                      str(tmp_path / "cmd")], obj={"app": app}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert web == (tmp_path / "cmd" / f"enterprise_{eid}.zh-CN.html").read_bytes()
    # another release (last year's study in the same database, here this one) as the previous wave
    r = client.post("/analyst/releases", data={"name": "2027", "n_boot": 0, "seed": 0, "previous_release": rid,
                                               "csrf_token": csrf_of(client, "/analyst/releases")})
    rid2 = int(r.headers["Location"].rsplit("=", 1)[1])
    html = client.get(f"/analyst/enterprises/{eid}?release={rid2}").get_data(as_text=True)
    this_year = re.search(r'<tr class="sig-\w+" data-code="composite">.*?<td class="score">([\d.]+)</td>', html,
                          re.S).group(1)
    assert f'<td class="last">{this_year}</td>' in html  # last wave = release 2026's own composite


def test_cati_jobs_run_carries_out_what_the_web_queued(client, app, aworld, session_factory):
    from click.testing import CliRunner

    from cati.cli import main

    login(client, "ana")
    client.post("/analyst/jobs", data={"product": "exports", "formats": ["csv"],
                                       "csrf_token": csrf_of(client, "/analyst/jobs")})
    job_service._hueys.clear()  # another process: the queue is read from its file
    job_service._tasks.clear()
    res = CliRunner().invoke(main, ["jobs", "run"], obj={"app": app}, catch_exceptions=False)
    assert res.exit_code == 0 and "1 job(s) run" in res.output
    assert client.get("/analyst/jobs/1.json").get_json()["status"] == "done"
