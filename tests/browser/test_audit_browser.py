"""A whole CCSO audit in a real browser against the real server (issue 17): the admin opens the audit and assigns
its people; the centre uploads evidence; the auditor judges the document pass, then the on-site pass on a tablet
with the network taken away for a spell (the judgements wait in localStorage and are all saved once it comes
back, each once); a non-conformity is raised and closed by a follow-up; the result shows and the report (HTML,
PDF) downloads with the non-conformity in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import Audit, AuditPass, EvidenceFile, Judgement, NonConformity, Role
from cati.services import certification as svc
from tests import factories
from tests.browser.conftest import Server

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TABLET = {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "is_mobile": True, "locale": "zh-CN",
          "device_scale_factor": 2}


@pytest.fixture
def audit_site(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'cati.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        factories.user(s, Role.ADMIN, username="root", display_name="管理员")
        factories.user(s, Role.AUDITOR, username="ann", display_name="王评审")
        factories.user(s, Role.CENTRE, username="ca", display_name="招行客服")
    server = Server(db_url, tmp_path / "instance")
    server.start()
    yield {"url": server.url, "factory": factory, "tmp": tmp_path}
    server.stop()
    engine.dispose()


def sign_in(page, url, user, landing="/audit/"):
    page.goto(url + "/login")
    page.click("#username")
    page.keyboard.type(user, delay=20)
    page.press("#username", "Tab")
    page.keyboard.type("password-123", delay=20)
    page.keyboard.press("Enter")
    page.wait_for_url(url + landing)


def judge(page, code: str, verdict: str, note: str = "", seen: str = "") -> None:
    form = page.locator(f"form.judge[data-requirement='{code}']")
    form.scroll_into_view_if_needed()
    form.locator(f"input[name=verdict][value={verdict}]").tap()
    if note:
        form.locator("textarea[name=note]").tap()
        page.keyboard.type(note, delay=15)
    if seen:
        form.locator("input[name=evidence_seen]").tap()
        page.keyboard.type(seen, delay=15)
    page.wait_for_timeout(150)
    form.locator("button.save").tap()


def saved(page, code: str) -> None:
    page.wait_for_selector(f"form.judge[data-requirement='{code}'][data-sync=saved]", timeout=15000)


def test_a_whole_audit(browser, audit_site):
    url, factory = audit_site["url"], audit_site["factory"]

    # The admin opens the audit and assigns the auditor and the centre's user.
    ctx = browser.new_context(viewport={"width": 1300, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, url, "root", landing="/admin/users")
    page.click("#admin-ccso")
    page.wait_for_url(url + "/audit/")
    page.click("input[name=centre_name]")
    page.keyboard.type("招商银行客服中心", delay=20)
    page.check("input[name=auditors]")
    page.check("input[name=centre_users]")
    page.click("#new-audit button[type=submit]")
    page.wait_for_selector("#status")
    audit_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    ctx.close()

    # The centre uploads its evidence for requirement 1.1.1.
    ctx = browser.new_context(viewport={"width": 1300, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, url, "ca")
    page.click("text=招商银行客服中心")
    page.click("#nav-evidence")
    evidence = audit_site["tmp"] / "三年发展规划.pdf"
    evidence.write_bytes(PDF)
    page.locator("#r-1\\.1\\.1 input[type=file]").set_input_files(str(evidence))
    page.wait_for_timeout(200)
    page.click("#r-1\\.1\\.1 button[type=submit]")
    page.wait_for_selector(".flash-info:has-text('已上传：三年发展规划.pdf')")
    assert page.locator("#r-1\\.1\\.1 .files a").inner_text() == "三年发展规划.pdf"
    assert page.locator("#nav-document").count() == 0  # a centre does not judge
    ctx.close()

    # The auditor, on a tablet: the document pass first (the centre's file is there to download) ...
    ctx = browser.new_context(**TABLET)
    page = ctx.new_page()
    sign_in(page, url, "ann")
    page.click("text=招商银行客服中心")
    page.click("#nav-document")
    with page.expect_download() as dl:
        page.click("#j-1\\.1\\.1 .files a")
    assert Path(dl.value.path()).read_bytes() == PDF
    judge(page, "1.1.1", "yes", seen="三年发展规划.pdf")
    judge(page, "1.1.2", "no", note="规划没有年度评审记录")
    saved(page, "1.1.1")
    saved(page, "1.1.2")

    # ... then the on-site pass, with the network gone for a spell.
    page.click("#nav-onsite")
    judge(page, "1.1.3", "yes", note="抽访两名班组长")
    saved(page, "1.1.3")
    ctx.set_offline(True)
    judge(page, "1.1.4", "no", note="规划未写技术投入目标")
    judge(page, "1.2.1", "yes")
    judge(page, "1.1.3", "no", note="复核后改判")  # changed its mind while offline: the newer one must win
    page.wait_for_selector("#checklist[data-pending='3']")
    assert "3 条判定待发送" in page.inner_text("#sync-state")
    with factory() as s:
        assert s.scalar(select(func.count(Judgement.id)).where(Judgement.review == AuditPass.ONSITE)) == 1
    page.wait_for_timeout(1500)
    ctx.set_offline(False)
    page.wait_for_selector("#checklist[data-pending='0']", timeout=20000)
    for code in ("1.1.4", "1.2.1", "1.1.3"):
        saved(page, code)
    with factory() as s:
        audit = s.get(Audit, audit_id)
        onsite = svc.current_judgements(s, audit, AuditPass.ONSITE)
        assert {c: j.verdict.value for c, j in onsite.items()} == {"1.1.3": "no", "1.1.4": "no", "1.2.1": "yes"}
        assert s.scalar(select(func.count(Judgement.id)).where(Judgement.review == AuditPass.ONSITE)) == 4
        assert s.scalar(select(func.count(EvidenceFile.id))) == 1
    # A reload shows what the server has (nothing left in the queue).
    page.reload()
    assert page.locator("#j-1\\.1\\.3 input[value=no]").is_checked()
    assert page.get_attribute("#checklist", "data-pending") == "0"

    # A non-conformity is raised from 1.1.2 and closed by a follow-up review.
    page.click("#nav-nc")
    page.select_option("#raise-nc select[name=requirement]", "1.1.2")
    deadline = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    page.fill("#raise-nc input[name=deadline]", deadline)
    page.locator("#raise-nc textarea").tap()
    page.keyboard.type("补充规划年度评审", delay=15)
    page.click("#raise-nc button[type=submit]")
    row = page.locator("#ncs tr[data-code='1.1.2']")
    assert deadline in row.inner_text() and "未关闭" in row.inner_text()
    row.locator("input[name=note]").tap()
    page.keyboard.type("已提交2026年度评审纪要", delay=15)
    row.locator("button[type=submit]").tap()
    page.wait_for_selector("#ncs tr[data-code='1.1.2'] .nc-state:has-text('跟踪复核后关闭')")
    with factory() as s:
        nc = s.scalar(select(NonConformity))
        assert nc.closed_at is not None and nc.closing_note == "已提交2026年度评审纪要"

    # The result per category, and the report.
    page.click("#nav-result")
    cat1 = page.locator("#categories tr[data-code='1']").inner_text()
    assert "2" in cat1 and "5" in cat1 and "40.0" in cat1 and "未达标" in cat1  # 1.1.1, 1.2.1 of 5 judged
    assert "评审未通过" in page.inner_text("#overall")
    with page.expect_download() as dl:
        page.click("#report-html")
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "招商银行客服中心" in html and "1.1.2" in html and "已提交2026年度评审纪要" in html
    with page.expect_download() as dl:
        page.click("#report-pdf")
    assert Path(dl.value.path()).read_bytes().startswith(b"%PDF")
    ctx.close()
