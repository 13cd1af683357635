"""The supervisor's shift screens in a real browser (Playwright + Debian chromium) against the app served by
gunicorn: the case browser (filters typed and chosen, rows ticked, a bulk action), the do-not-call list (search,
remove with a reason), appointments, the interviewer's own appointments and callback lookup, and messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.models import AuditLog, Case, CaseStatus, DoNotCall, Role, User
from cati.services.users import hash_password
from tests import factories

from .conftest import SCREENSHOTS, STUDY_FILE, open_timezone
from .test_supervisor_browser import SupervisorServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shift-site")
    db_url = f"sqlite:///{tmp / 'cati.sqlite'}"
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    from cati.services.studies import install_study

    tz = open_timezone()
    due = datetime.now(UTC) - timedelta(minutes=5)
    pw = hash_password("password-123")
    out = {"factory": factory, "tz": tz}
    with transaction(factory) as s:
        study = install_study(s, STUDY_FILE)
        out["study_id"] = study.id
        bank = factories.enterprise(s, study, name="招商银行")
        ins = factories.enterprise(s, study, name="平安保险", industry_name="保险")
        out["bank"], out["ins"] = bank.id, ins.id
        out["bank_cases"] = factories.cases(s, study, bank, 8, timezone=tz, next_call_at=due)
        out["ins_cases"] = factories.cases(s, study, ins, 70, timezone=tz, next_call_at=due)
        for username, name, role, ext in [("sue", "张督导", Role.SUPERVISOR, "9001"),
                                          ("ann", "王芳", Role.INTERVIEWER, "8001"),
                                          ("bob", "李强", Role.INTERVIEWER, "8002")]:
            u = User(username=username, display_name=name, password_hash=pw, role=role, extension=ext)
            s.add(u)
            s.flush()
            out[username] = u.id
    server = SupervisorServer(db_url, tmp / "instance")
    server.start()
    out["url"] = server.url
    yield out
    server.stop()
    engine.dispose()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    p = ctx.new_page()
    yield p
    ctx.close()


def sign_in(page, site, user="sue", landing="/supervisor/"):
    page.goto(site["url"] + "/login")
    page.click("#username")
    page.keyboard.type(user, delay=20)
    page.keyboard.press("Tab")
    page.keyboard.type("password-123", delay=10)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(".*" + re.escape(landing) + ".*"))


def number_of(site, case_id):
    with site["factory"]() as s:
        return s.get(Case, case_id).phones[0].e164


def test_case_browser_filter_tick_and_bulk_stop(site, page):
    sign_in(page, site)
    page.click("text=个案")
    page.wait_for_url("**/supervisor/cases")
    assert page.locator("#cases tbody tr").count() == 50
    page.click("#page-next")
    page.wait_for_selector("#page-prev")
    assert page.locator("#cases tbody tr").count() == 28
    # Filter: the bank's cases, by choosing the enterprise and pressing Enter in the phone field.
    page.select_option("#f-enterprise", str(site["bank"]))
    page.click("#f-apply")
    page.wait_for_url(re.compile(r".*enterprise=\d+.*"))
    assert page.locator("#cases tbody tr").count() == 8
    # Typing part of one number finds that case; the list shows it masked.
    number = number_of(site, site["bank_cases"][2])[3:]
    page.click("#f-phone")
    page.keyboard.type(number[-6:], delay=40)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*phone=\d+.*"))
    rows = page.locator("#cases tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("[data-k=phone]").inner_text() == f"{number[:3]}****{number[-4:]}"
    assert number not in page.content()
    # Back to the bank's list; tick three rows by clicking, stop them with a reason.
    page.fill("#f-phone", "")
    page.click("#f-apply")
    page.wait_for_timeout(300)
    picked = site["bank_cases"][:3]
    for cid in picked:
        page.click(f'#cases tr[data-case="{cid}"] input[name=case]')
        page.wait_for_timeout(120)
    assert page.inner_text("#bulk-n") == "3"
    page.select_option("#bulk-action", "stop")
    page.click("#bulk-note")
    page.keyboard.type("客户要求暂停", delay=20)
    page.click("#bulk-go")
    page.wait_for_selector("text=停止：已处理 3 个个案")
    for cid in picked:
        assert page.inner_text(f'#cases tr[data-case="{cid}"] [data-k=status]') == "已停止"
    with site["factory"]() as s:
        assert {s.get(Case, c).status for c in picked} == {CaseStatus.STOPPED}
        notes = s.scalars(select(AuditLog.note).where(AuditLog.action == "case.stop")).all()
        assert notes == ["客户要求暂停"] * 3
    # Select all on the page, reassign to 李强.
    page.select_option("#f-status", "stopped")
    page.click("#f-apply")
    page.wait_for_url(re.compile(r".*status=stopped.*"))
    page.click("#check-all")
    assert page.inner_text("#bulk-n") == "3"
    page.select_option("#bulk-action", "reassign")
    assert page.is_visible("#bulk-to")
    page.select_option("#bulk-to", str(site["bob"]))
    page.click("#bulk-go")
    page.wait_for_selector("text=指定访员：已处理 3 个个案")
    assert page.locator('#cases [data-k=owner]:has-text("李强")').count() == 3
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "case-browser.png"), full_page=True)


def test_dnc_list_search_and_remove_with_reason(site, page):
    a, b = number_of(site, site["ins_cases"][0]), number_of(site, site["ins_cases"][1])
    sign_in(page, site)
    page.click("text=免打扰")
    page.wait_for_url("**/supervisor/dnc")
    page.click("textarea[name=numbers]")
    page.keyboard.type(a[3:], delay=10)
    page.keyboard.press("Enter")
    page.keyboard.type(b[3:], delay=10)
    page.fill("form.stack input[name=reason]", "受访者要求")
    page.click("form.stack button.danger")
    page.wait_for_selector("#dnc-total:has-text('共 2 个号码')")
    assert a[3:] not in page.content()
    page.click("#dnc-q")
    page.keyboard.type(a[-5:], delay=40)
    page.keyboard.press("Enter")
    page.wait_for_selector("#dnc-total:has-text('共 1 个号码')")
    row = page.locator("#dnc tbody tr").first
    assert row.locator("[data-k=phone]").inner_text() == f"{a[3:6]}****{a[-4:]}"
    # A removal without a reason is stopped by the form itself; with one it goes through.
    row.locator("button").click()
    assert page.locator("#dnc tbody tr").count() == 1
    row.locator("input[name=reason]").click()
    page.keyboard.type("号码已更换机主", delay=20)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=已移出免打扰名单")
    with site["factory"]() as s:
        assert s.scalar(select(DoNotCall.e164)) == b
        assert s.scalar(select(AuditLog.note).where(AuditLog.action == "dnc.remove")) == "号码已更换机主"
    page.fill("#dnc-q", "")
    page.keyboard.press("Enter")
    page.wait_for_selector("#dnc-total:has-text('共 1 个号码')")
    with page.expect_download() as dl:
        page.click("#dnc-csv")
    text = open(dl.value.path(), encoding="utf-8-sig").read()
    assert b in text and a not in text  # the export holds full numbers (supervisors only)
