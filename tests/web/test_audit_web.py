"""CCSO audits on the web (issue 17) through Flask's test client, on a real database and real files: who sees
which audit, evidence uploads with bad input (too large, disguised executables, a path in the name, an empty file:
each a clear error in the user's language, nothing stored, nothing else lost), safe downloads, judgements that a
resend never duplicates and an older one never overwrites, non-conformities, the result and the CSAT evidence."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cati.db import transaction
from cati.models import AuditLog, EvidenceFile, Judgement, NonConformity, Role
from cati.services import certification as svc
from cati.study.audit import load_audit_study
from tests.web.conftest import csrf_of, fast_user, login

ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = ROOT / "config" / "studies" / "ccso_audit.yaml"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def audits(app, session_factory):
    """Two audits (centre A with auditor ann and centre user ca; centre B with auditor bob and centre user cb),
    an admin and an interviewer."""
    study = load_audit_study(CHECKLIST)
    with transaction(session_factory) as s:
        admin = fast_user(s, "root", Role.ADMIN)
        ann = fast_user(s, "ann", Role.AUDITOR)
        bob = fast_user(s, "bob", Role.AUDITOR)
        ca = fast_user(s, "ca", Role.CENTRE)
        cb = fast_user(s, "cb", Role.CENTRE)
        fast_user(s, "ivy", Role.INTERVIEWER)
        a = svc.create_audit(s, study=study, centre_name="招商银行客服中心", external_id="E001", auditor_ids=[ann.id],
                             centre_user_ids=[ca.id], by=admin)
        b = svc.create_audit(s, study=study, centre_name="顺丰客服中心", external_id=None, auditor_ids=[bob.id],
                             centre_user_ids=[cb.id], by=admin)
        return {"a": a.id, "b": b.id}


def complete_interviews(session_factory, study, enterprises: dict[str, str], n: int, seed: int = 5,
                        interviewer: str = "iv-csat") -> None:
    """``n`` complete interviews with synthetic answers (scoring.synthetic) per enterprise of the CSAT study."""
    import pandas as pd

    from cati.models import Answer, Case, CaseStatus, Enterprise, Interview, InterviewStatus
    from scoring.synthetic import make_synthetic_responses
    from tests import factories

    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    df = make_synthetic_responses(n_enterprises=len(enterprises), n_industries=1, n_respondents=n * len(enterprises),
                                  seed=seed)
    items = [c for c in df.columns if re.fullmatch(r"[A-F][0-9]|Q0|D0|CB1", c)]
    with transaction(session_factory) as s:
        iv = factories.user(s, Role.INTERVIEWER, username=interviewer)
        for (ext, name), (_, grp) in zip(enterprises.items(), df.groupby("enterprise_id", sort=True), strict=True):
            ent = Enterprise(study_id=study.id, external_id=ext, name=name, province="广东", quota_target=20,
                             industry_id=factories.industry(s, "银行").id)
            s.add(ent)
            s.flush()
            for k, (_, row) in enumerate(grp.head(n).iterrows()):
                case = Case(study_id=study.id, enterprise_id=ent.id, case_ref=f"{ext}-{k}", status=CaseStatus.FINAL,
                            final_disposition="1.1", attempts=1, attributes={}, imported_at=t0, finalized_at=t0)
                s.add(case)
                s.flush()
                ivw = Interview(study_id=study.id, case_id=case.id, interviewer_id=iv.id,
                                status=InterviewStatus.COMPLETE, started_at=t0, ended_at=t0)
                ivw.answers.extend(Answer(question_code=c, value_code=int(row[c]), answered_at=t0)
                                   for c in items if not pd.isna(row[c]))
                s.add(ivw)


def signed_in(app, username: str):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def upload(client, audit_id: int, name: str, data: bytes, code: str = "1.1.1", lang: str | None = None):
    token = csrf_of(client, f"/audit/{audit_id}/evidence")
    return client.post(f"/audit/{audit_id}/evidence", data={
        "csrf_token": token, "requirement": code, "cat": "1", "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data", follow_redirects=True,
        headers={"Accept-Language": lang} if lang else {})


def test_roles_centre_sees_only_its_own_auditor_only_assigned_interviewer_refused(app, audits):
    ca = signed_in(app, "ca")
    listing = ca.get("/audit/").get_data(as_text=True)
    assert "招商银行客服中心" in listing and "顺丰客服中心" not in listing
    assert ca.get(f"/audit/{audits['a']}/evidence").status_code == 200
    assert ca.get(f"/audit/{audits['b']}/evidence").status_code == 403
    assert ca.get(f"/audit/{audits['b']}/result").status_code == 403
    # A centre user does not judge, even on its own audit.
    assert ca.get(f"/audit/{audits['a']}/check/document").status_code == 403

    bob = signed_in(app, "bob")
    listing = bob.get("/audit/").get_data(as_text=True)
    assert "顺丰客服中心" in listing and "招商银行客服中心" not in listing
    assert bob.get(f"/audit/{audits['b']}/check/onsite").status_code == 200
    assert bob.get(f"/audit/{audits['a']}/check/document").status_code == 403
    r = bob.post(f"/audit/{audits['a']}/judge", json={"client_id": "x" * 16, "pass": "document",
                                                       "requirement": "1.1.1", "verdict": "yes",
                                                       "judged_at": datetime.now(UTC).isoformat()},
                 headers={"X-CSRFToken": csrf_of(bob, "/audit/"), "X-Requested-With": "fetch"})
    assert r.status_code == 403

    ivy = signed_in(app, "ivy")
    assert ivy.get("/audit/").status_code == 403
    assert ivy.get(f"/audit/{audits['a']}/evidence").status_code == 403
    # Only an admin opens audits.
    token = csrf_of(bob, "/audit/")
    assert bob.post("/audit/new", data={"csrf_token": token, "centre_name": "x"}).status_code == 403


def test_bad_uploads_are_refused_clearly_and_lose_nothing(app, audits, session_factory):
    ca = signed_in(app, "ca")
    page = upload(ca, audits["a"], "规划.pdf", PDF)
    assert "已上传：规划.pdf" in page.get_data(as_text=True)
    folder = Path(app.config["CATI_SETTINGS"].instance_path) / "audit_evidence"
    before = sorted(p.name for p in folder.iterdir())
    assert len(before) == 1

    bad = [
        ("big.pdf", PDF + b"0" * (app.config["CATI_SETTINGS"].audit_upload_max_bytes), "超过"),
        ("report.pdf", b"MZ\x90\x00\x03" + b"\x00" * 400, "可执行程序"),
        ("data.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 400, "可执行程序"),
        ("run.txt", b"#!/bin/sh\nrm -rf /\n", "可执行程序"),
        ("../../../etc/cron.d/evil.pdf", PDF, "包含路径"),
        ("..\\..\\boot.ini.pdf", PDF, "包含路径"),
        ("empty.pdf", b"", "是空的"),
        ("huge.pdf", PDF + b"0" * (app.config["CATI_SETTINGS"].audit_upload_max_bytes + 2 * 1024 * 1024),
         "上传的文件超过 20.0 MB 的上限"),
        ("photo.png", PDF, "与扩展名不符"),
    ]
    for name, data, words in bad:
        html = upload(ca, audits["a"], name, data).get_data(as_text=True)
        assert words in html, (name, re.findall(r'class="flash[^"]*"[^>]*>([^<]*)', html))
    # The same refusals in English for an English-speaking user.
    ca.post("/lang", data={"lang": "en", "next": "/audit/", "csrf_token": csrf_of(ca, "/audit/")})
    html = upload(ca, audits["a"], "setup.pdf", b"MZ" + b"\x00" * 300).get_data(as_text=True)
    assert "is an executable program and is refused" in html

    # Nothing else stored, nothing lost: the one good file is still there, byte for byte.
    assert sorted(p.name for p in folder.iterdir()) == before
    with session_factory() as s:
        rows = s.scalars(select(EvidenceFile)).all()
        assert [(r.display_name, r.kind) for r in rows] == [("规划.pdf", "pdf")]
        assert rows[0].stored_name != "规划.pdf" and "/" not in rows[0].stored_name
        assert (folder / rows[0].stored_name).read_bytes() == PDF
        file_id = rows[0].id

    # The auditor downloads it: an attachment, never rendered, with nosniff and a CSP that runs nothing.
    ann = signed_in(app, "ann")
    r = ann.get(f"/audit/evidence/{file_id}")
    assert r.status_code == 200 and r.data == PDF
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert signed_in(app, "bob").get(f"/audit/evidence/{file_id}").status_code == 403
    with session_factory() as s:
        actions = s.scalars(select(AuditLog.action).where(AuditLog.action.like("audit.evidence.%"))).all()
    assert sorted(actions) == ["audit.evidence.download", "audit.evidence.upload"]

    # Once the audit has its result, the centre can no longer add evidence.
    token = csrf_of(ann, f"/audit/{audits['a']}/")
    ann.post(f"/audit/{audits['a']}/status", data={"csrf_token": token, "status": "closed"})
    html = upload(ca, audits["a"], "late.pdf", PDF).get_data(as_text=True)
    assert "The audit has its result; no more evidence can be uploaded." in html
    assert sorted(p.name for p in folder.iterdir()) == before


def post_judgement(client, audit_id, token, **kw):
    body = {"pass": "onsite", "requirement": "1.1.1", "verdict": "yes", "note": "", "evidence_seen": "",
            "judged_at": datetime.now(UTC).isoformat(), **kw}
    return client.post(f"/audit/{audit_id}/judge", json=body,
                       headers={"X-CSRFToken": token, "X-Requested-With": "fetch"})


def test_judgements_are_idempotent_and_an_older_one_never_overwrites_a_newer(app, audits, session_factory):
    ann = signed_in(app, "ann")
    token = csrf_of(ann, f"/audit/{audits['a']}/check/onsite")
    now = datetime.now(UTC)
    first = post_judgement(ann, audits["a"], token, client_id="c" * 20, verdict="no", note="没有规划",
                           judged_at=(now - timedelta(minutes=10)).isoformat())
    assert first.status_code == 200 and first.json["duplicate"] is False and first.json["current"] is True
    again = post_judgement(ann, audits["a"], token, client_id="c" * 20, verdict="no",
                           judged_at=(now - timedelta(minutes=10)).isoformat())
    assert again.status_code == 200 and again.json["duplicate"] is True
    newer = post_judgement(ann, audits["a"], token, client_id="d" * 20, verdict="yes",
                           judged_at=(now - timedelta(minutes=1)).isoformat())
    assert newer.json["current"] is True
    # A judgement made before the newer one but synced late (from an offline tablet) is kept, not current.
    late = post_judgement(ann, audits["a"], token, client_id="e" * 20, verdict="no",
                          judged_at=(now - timedelta(minutes=5)).isoformat())
    assert late.json["duplicate"] is False and late.json["current"] is False
    with session_factory() as s:
        assert s.scalar(select(func.count(Judgement.id))) == 3
        from cati.models import Audit, AuditPass
        audit = s.get(Audit, audits["a"])
        assert svc.current_judgements(s, audit, AuditPass.ONSITE)["1.1.1"].verdict.value == "yes"
        assert svc.current_judgements(s, audit, AuditPass.DOCUMENT) == {}
    # Refused input says why, in the user's language, and stores nothing.
    bad = post_judgement(ann, audits["a"], token, client_id="f" * 20, verdict="na")
    assert bad.status_code == 422 and "不适用" in bad.json["error"]
    with session_factory() as s:
        assert s.scalar(select(func.count(Judgement.id))) == 3


def test_nonconformity_raised_closed_overdue_and_result(app, audits, session_factory):
    ann = signed_in(app, "ann")
    token = csrf_of(ann, f"/audit/{audits['a']}/check/document")
    post_judgement(ann, audits["a"], token, client_id="g" * 20, **{"pass": "document"}, verdict="no",
                   requirement="1.1.2", note="未评审")
    for i, code in enumerate(("1.1.1", "1.1.3")):
        post_judgement(ann, audits["a"], token, client_id=f"h{i}" * 10, **{"pass": "document"}, requirement=code)
    page = ann.get(f"/audit/{audits['a']}/nonconformities").get_data(as_text=True)
    assert 'value="1.1.2"' in page
    form = {"csrf_token": token, "requirement": "1.1.2", "description": "规划未年度评审",
            "deadline": (datetime.now(UTC).date() + timedelta(days=30)).isoformat()}
    html = ann.post(f"/audit/{audits['a']}/nonconformities", data=form, follow_redirects=True).get_data(as_text=True)
    assert "已登记要求 1.1.2 的不符合项" in html and "规划未年度评审" in html
    # An overdue deadline shows as overdue.
    with transaction(session_factory) as s:
        nc = s.scalar(select(NonConformity))
        nc.deadline = datetime.now(UTC).date() - timedelta(days=1)
        nc_id = nc.id
    html = ann.get(f"/audit/{audits['a']}/nonconformities").get_data(as_text=True)
    assert 'class="overdue"' in html and "已逾期" in html
    # Closing needs a note.
    r = ann.post(f"/audit/nonconformity/{nc_id}/close", data={"csrf_token": token, "note": " "},
                 follow_redirects=True)
    assert "需要填写复核说明" in r.get_data(as_text=True)
    r = ann.post(f"/audit/nonconformity/{nc_id}/close", data={"csrf_token": token, "note": "已补评审记录"},
                 follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "跟踪复核后关闭" in html and "已补评审记录" in html and "已逾期" not in html

    html = ann.get(f"/audit/{audits['a']}/result").get_data(as_text=True)
    row = re.search(r'<tr data-code="1">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row) == ["2", "3", "66.7"] and "未达标" in row
    assert "评审未通过" in html and "未判定" in html
    pdf = ann.get(f"/audit/{audits['a']}/report.pdf")
    assert pdf.data.startswith(b"%PDF") and pdf.headers["Content-Disposition"].startswith("attachment")
    rep = ann.get(f"/audit/{audits['a']}/report.html").get_data(as_text=True)
    assert "1.1.2" in rep and "已补评审记录" in rep

    # Every screen in English too.
    ann.post("/lang", data={"lang": "en", "next": "/audit/", "csrf_token": token})
    words = {"/audit/": "Audits", f"/audit/{audits['a']}/": "requirements judged",
             f"/audit/{audits['a']}/evidence?cat=2": "Evidence", f"/audit/{audits['a']}/check/document": "Conforming",
             f"/audit/{audits['a']}/check/onsite?cat=6": "satisfaction studies of this database",
             f"/audit/{audits['a']}/nonconformities": "Closed by follow-up review",
             f"/audit/{audits['a']}/result": "Audit failed: 0 of 9 categories passed."}
    for path, text in words.items():
        r = ann.get(path)
        assert r.status_code == 200 and text in r.get_data(as_text=True), path


def test_category_six_shows_the_enterprises_csat_result_and_trend(app, audits, session_factory, study, tmp_path):
    """The audited enterprise took part in two CSAT waves (same external id): its score, interval, n and tier from
    scoring.score_study appear in category 六, with the change between the waves. Centre B has no external id and
    is matched by name, and the table says so."""
    import yaml

    from cati.services.frames import responses_frame
    from cati.services.studies import install_study
    from scoring import ScoringSpec, score_study
    from tests.conftest import STUDY_FILE

    banks = {"E001": "招商银行", "E002": "工商银行", "E003": "建设银行"}
    complete_interviews(session_factory, study, banks, n=12)
    second = yaml.safe_load(STUDY_FILE.read_text(encoding="utf-8"))
    second["id"] = "csat_wave2"
    second["title"] = {"zh-CN": "第二期满意度调查", "en": "Second wave"}
    path = tmp_path / "wave2.yaml"
    path.write_text(yaml.safe_dump(second, allow_unicode=True), encoding="utf-8")
    with transaction(session_factory) as s:
        wave2 = install_study(s, path)
    complete_interviews(session_factory, wave2, {**banks, "E009": "顺丰客服中心"}, n=10, seed=9, interviewer="iv2")

    ann = signed_in(app, "ann")
    html = ann.get(f"/audit/{audits['a']}/check/document?cat=6").get_data(as_text=True)
    block = re.search(r'<section class="card" id="csat">(.*?)</section>', html, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", block.split("<tbody>")[1], re.S)
    assert len(rows) == 2
    expected = []
    with session_factory() as s:
        for st in (study, wave2):
            row = s.get(type(st), st.id)
            res = score_study(responses_frame(s, row.id), ScoringSpec.from_study(row.definition), n_boot=0)
            expected.append(float(res.enterprises.set_index("enterprise_id").loc["E001", "composite"]))
    for row, n, want in zip(rows, ("12", "10"), expected, strict=True):
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
        assert cells[1] == "E001 招商银行" and cells[6] == "企业编号" and cells[4] == n
        low, high = (float(x) for x in cells[3].split("–"))
        assert float(cells[2]) == round(want, 2) and low <= want <= high
        assert cells[5] in ("显著高于行业", "与行业无显著差异", "显著低于行业")
    trend = re.search(r'<p id="csat-trend">([^<]*)</p>', html).group(1)
    assert f"{expected[1] - expected[0]:+.2f}" in trend and "第二期满意度调查" in trend

    bob = signed_in(app, "bob")
    html = bob.get(f"/audit/{audits['b']}/check/onsite?cat=6").get_data(as_text=True)
    block = re.search(r'<section class="card" id="csat">(.*?)</section>', html, re.S).group(1)
    assert "E009 顺丰客服中心" in block and "企业名称" in block and "csat-trend" not in html
    # Another category shows no CSAT block.
    assert 'id="csat"' not in bob.get(f"/audit/{audits['b']}/check/onsite?cat=5").get_data(as_text=True)
