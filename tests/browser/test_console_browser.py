"""An interviewer's day in the browser, keyboard only: sign in → next case → dial (simulated) → interview →
complete; a refusal; an appointment; a server killed mid-interview that resumes with every answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cati.models import Answer, Appointment, CallAttempt, Case, Interview, InterviewStatus
from cati.services.calling import local

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

# The default study keyed straight through: INTRO, consent, screening, 22 items with D0 = 1 (D1–D3 asked),
# overall, callback, open question, profile, END.
KEYS_AFTER_A2 = ["3", "2",  # A3 A4
                 "1", "5", "8", "9",  # B1-B4 (8 = n/a, 9 = don't know)
                 "5", "5", "4", "4",  # C1-C4
                 "1", "3", "4", "5",  # D0 = yes, D1-D3
                 "5", "5", "5",  # E1-E3
                 "4", "4", "4", "4",  # F1-F4
                 "4", "2"]  # Q0, CB1
EXPECTED = {"CONSENT": 1, "S1": 1, "S2": 1, "A1": 5, "A2": 3, "A3": 3, "A4": 2, "B1": 1, "B2": 5, "B3": 8, "B4": 9,
            "C1": 5, "C2": 5, "C3": 4, "C4": 4, "D0": 1, "D1": 3, "D2": 4, "D3": 5, "E1": 5, "E2": 5, "E3": 5,
            "F1": 4, "F2": 4, "F3": 4, "F4": 4, "Q0": 4, "CB1": 2, "P1": 2, "P2": 3, "P3": 1}


def open_page(browser, **kw):
    page = browser.new_page(**kw)
    # The machine running the suite may be busy: waits are generous, a real fault still fails them.
    page.set_default_timeout(60000)
    return page


def sign_in(page, url, user="ann"):
    page.goto(url + "/login")
    page.focus("#username")
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    page.keyboard.type("password-123")
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/interviewer")


def console_ready(page):
    # The console's script has attached its key handlers (keys typed before that would be lost).
    page.wait_for_selector("body[data-console-ready='1']", state="attached")


def next_and_dial(page):
    console_ready(page)
    page.keyboard.press("n")
    page.wait_for_selector("#btn-dial")
    console_ready(page)
    page.keyboard.press("d")
    # Live call state arrives over SSE; an answered call re-renders with the start button.
    page.wait_for_selector("#btn-start", timeout=60000)
    console_ready(page)


def to_consent(page):
    """Start the interview of the connected call and pass the intro: the consent question is showing."""
    page.keyboard.press("Enter")
    question_is(page, "INTRO")
    page.keyboard.press("Enter")
    question_is(page, "CONSENT")


def answer_keys(page, keys):
    for k in keys:
        page.keyboard.press(k)


def question_is(page, code, timeout=30000):
    page.wait_for_selector(f'#step[data-code="{code}"]', timeout=timeout)


def answers_in_db(factory, interview_id):
    with factory() as s:
        rows = s.execute(select(Answer.question_code, Answer.value_code, Answer.value_text)
                         .where(Answer.interview_id == interview_id)).all()
    return {c: (v if v is not None else t) for c, v, t in rows if v is not None or t is not None}


def held_number(factory):
    with factory() as s:
        case = s.scalars(select(Case).where(Case.claimed_by_id.is_not(None))).first()
        return case.phones[0].e164


def test_complete_interview_by_keyboard_only(site, browser):
    url, factory = site["server"].url, site["factory"]
    page = open_page(browser, viewport={"width": 1366, "height": 900})
    sign_in(page, url)
    assert "下一个样本" in page.content()
    next_and_dial(page)
    number = held_number(factory)[3:]  # +86 mobile, shown grouped for reading: 139 0000 0001
    body = page.inner_text("body")
    assert "招商银行" in body and f"{number[:3]} {number[3:7]} {number[7:]}" in body  # full number for the holding interviewer
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "case-zh.png"), full_page=True)
    to_consent(page)
    answer_keys(page, ["1", "1", "1", "5", "4"])  # consent, S1, S2, A1, A2
    question_is(page, "A3")
    page.keyboard.press("Backspace")  # back to A2 and change it
    question_is(page, "A2")
    assert "chosen" in page.inner_html("#step")  # the earlier answer is shown
    page.keyboard.press("3")
    question_is(page, "A3")
    answer_keys(page, KEYS_AFTER_A2[:6])
    question_is(page, "C1")
    page.screenshot(path=str(SCREENSHOTS / "question-zh.png"), full_page=True)
    answer_keys(page, KEYS_AFTER_A2[6:])
    question_is(page, "OPEN1")
    page.keyboard.type("希望缩短排队等待时间")
    page.keyboard.press("Enter")
    question_is(page, "P1")
    answer_keys(page, ["2", "3", "1"])
    question_is(page, "END")
    page.keyboard.press("Enter")
    page.wait_for_selector("#btn-next")
    assert "访问已完成" in page.inner_text("#work")
    with factory() as s:
        interview = s.scalars(select(Interview)).one()
        assert interview.status == InterviewStatus.COMPLETE and interview.disposition == "1.1"
        assert s.get(Case, interview.case_id).final_disposition == "1.1"
    got = answers_in_db(factory, interview.id)
    assert got == {**EXPECTED, "OPEN1": "希望缩短排队等待时间"}
    # The shift counters moved: one dial, one contact, one complete.
    assert page.inner_text("#c-dials") == "1" and page.inner_text("#c-completes") == "1"


def test_refusal_with_reason(site, browser):
    url, factory = site["server"].url, site["factory"]
    page = open_page(browser)
    sign_in(page, url)
    next_and_dial(page)
    page.keyboard.press("Escape")  # to the outcome list
    page.select_option("#outcome-select", "2.112")
    page.select_option("#refusal-reason", "privacy")
    page.fill("#note", "不愿透露个人信息")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#btn-next")
    assert "2.112" in page.inner_text("#last-call")
    with factory() as s:
        case = s.scalars(select(Case).where(Case.final_disposition.is_not(None))).one()
        assert case.final_disposition == "2.112"
        attempt = s.scalars(select(CallAttempt).where(CallAttempt.case_id == case.id)).one()
        assert attempt.outcome == "2.112" and attempt.outcome_source == "interviewer"
        assert "担心隐私" in attempt.notes and "不愿透露个人信息" in attempt.notes


def test_appointment_tomorrow_morning(site, browser):
    url, factory, tz = site["server"].url, site["factory"], site["tz"]
    page = open_page(browser)
    sign_in(page, url)
    next_and_dial(page)
    page.keyboard.press("Escape")
    page.select_option("#outcome-select", "2.21")
    page.click("text=明天上午")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#btn-next")
    with factory() as s:
        appt = s.scalars(select(Appointment)).one()
        case = s.get(Case, appt.case_id)
        assert case.status.value == "ready" and case.next_call_at == appt.due_at
    due_local = local(appt.due_at, tz)
    tomorrow = (local(datetime.now(UTC), tz) + timedelta(days=1)).date()
    assert (due_local.date(), due_local.hour, due_local.minute) == (tomorrow, 9, 30) or due_local.hour >= 10


def test_server_killed_mid_interview_resumes_with_every_answer(site, browser):
    server, factory = site["server"], site["factory"]
    url = server.url
    page = open_page(browser)
    sign_in(page, url)
    next_and_dial(page)
    page.keyboard.press("Enter")
    question_is(page, "INTRO")
    page.keyboard.press("Enter")
    answer_keys(page, ["1", "1", "1", "5", "4", "3", "2", "1"])  # consent, S1, S2, A1–A4, B1
    question_is(page, "B2")
    server.kill()
    with factory() as s:
        interview = s.scalars(select(Interview)).one()
    before = answers_in_db(factory, interview.id)
    assert before == {"CONSENT": 1, "S1": 1, "S2": 1, "A1": 5, "A2": 4, "A3": 3, "A4": 2, "B1": 1}
    server.start()
    page.goto(url + "/interviewer")  # the browser's session survives the restart
    console_ready(page)
    question_is(page, "B2")
    answer_keys(page, ["2", "3"])
    question_is(page, "B4")
    # The respondent has to go: break off, keeping every answer.
    page.keyboard.press("Escape")
    page.select_option("#outcome-select", "2.12")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#btn-next")
    with factory() as s:
        interview = s.get(Interview, interview.id)
        assert interview.status == InterviewStatus.PARTIAL and interview.disposition == "2.12"
        # The call placed by the killed server can't report its end any more: it is closed when coded.
        attempt = s.get(CallAttempt, interview.attempt_id)
        assert attempt.status.value == "ended" and attempt.outcome == "2.12"
    assert answers_in_db(factory, interview.id) == {**before, "B2": 2, "B3": 3}


def test_console_in_english_screenshot(site, browser):
    url = site["server"].url
    page = open_page(browser, viewport={"width": 1366, "height": 900})
    sign_in(page, url)
    with page.expect_navigation():
        page.select_option("#lang-select", "en")
    assert "Next case" in page.inner_text("#work")
    next_and_dial(page)
    page.screenshot(path=str(SCREENSHOTS / "case-en.png"), full_page=True)
    page.keyboard.press("Enter")
    question_is(page, "INTRO")
    page.keyboard.press("Enter")
    answer_keys(page, ["1", "1", "1"])
    question_is(page, "A1")
    assert "how satisfied are you" in page.inner_text("#step")
    page.screenshot(path=str(SCREENSHOTS / "question-en.png"), full_page=True)
    # The interviewer prefers rating blocks as a grid: A1–A4 on one screen, a digit answers the current row.
    page.check("#grid-pref")
    page.click("#prefs-form button[type=submit]")
    page.wait_for_selector("table.grid tr.current[data-code=A1]")
    page.keyboard.press("5")
    page.wait_for_selector("table.grid tr.current[data-code=A2]")
    page.keyboard.press("4")
    page.wait_for_selector("table.grid tr.current[data-code=A3]")
    page.screenshot(path=str(SCREENSHOTS / "grid-en.png"), full_page=True)
    with site["factory"]() as s:
        interview = s.scalars(select(Interview)).one()
    assert {k: v for k, v in answers_in_db(site["factory"], interview.id).items() if k.startswith("A")} == \
        {"A1": 5, "A2": 4}


def test_a_supervisors_pause_and_sign_out_reach_the_open_console(site, browser):
    # The open console hears of a supervisor's pause within a heartbeat or two (idle: it shows the paused
    # console; mid-interview: a note, the interview in hand goes on, no next case), and of a sign-out.
    from cati.db import transaction
    from cati.models import Role, User
    from cati.services import agents
    from tests import factories

    url, factory = site["server"].url, site["factory"]
    with transaction(factory) as s:
        sup = factories.user(s, Role.SUPERVISOR, username="sue").id
        ann = s.scalar(select(User.id).where(User.username == "ann"))
    page = open_page(browser, locale="zh-CN")
    sign_in(page, url)
    console_ready(page)
    started = datetime.now(UTC)
    with transaction(factory) as s:
        agents.pause_by_supervisor(s, ann, datetime.now(UTC), reason="training", by=sup)
    page.wait_for_selector("#agent-state >> text=暂停 · 培训", timeout=12000)
    assert (datetime.now(UTC) - started).total_seconds() < 12
    assert page.locator("#btn-next").is_disabled()
    # A new sign-in keeps the supervisor's pause.
    page.context.clear_cookies()
    sign_in(page, url)
    page.wait_for_selector("#agent-state >> text=暂停 · 培训")

    # The interviewer is ready again and into an interview; the supervisor pauses mid-interview: a note, and
    # the interview in hand continues.
    page.click("#btn-ready")
    page.wait_for_selector("#btn-next:not([disabled])")
    next_and_dial(page)
    to_consent(page)
    with transaction(factory) as s:
        agents.pause_by_supervisor(s, ann, datetime.now(UTC), reason="meeting", by=sup)
    page.wait_for_selector("#supervisor-note >> text=督导已将您暂停（开会）", timeout=12000)
    answer_keys(page, ["1"])
    question_is(page, "S1")

    # Signed out by the supervisor: the console goes to the sign-in page, which says why.
    with transaction(factory) as s:
        agents.sign_out_by_supervisor(s, ann, datetime.now(UTC), by=sup)
    page.wait_for_url(url + "/login?signed_out=1", timeout=12000)
    assert "督导已将您签退" in page.content()


def test_an_answer_keyed_while_the_server_is_down_is_kept_and_sent_when_it_is_back(site, browser):
    # Nothing unacknowledged is called saved, and nothing keyed is lost: the page keeps the answer and sends it
    # again until the server takes it; the keys typed meanwhile follow in order.
    server, factory = site["server"], site["factory"]
    url = server.url
    page = open_page(browser, locale="zh-CN")
    sign_in(page, url)
    next_and_dial(page)
    to_consent(page)
    answer_keys(page, ["1", "1"])  # consent, S1
    question_is(page, "S2")
    server.kill()
    answer_keys(page, ["1", "5"])  # S2 and A1, keyed while nothing answers
    page.wait_for_selector("#save-state.bad >> text=尚未保存", timeout=15000)
    assert "已保存" not in page.inner_text("#save-state")
    with factory() as s:
        interview = s.scalars(select(Interview)).one()
    assert "S2" not in answers_in_db(factory, interview.id)
    server.start()
    question_is(page, "A2", timeout=60000)  # both answers went through once the server was back
    page.wait_for_selector("#save-state:not(.bad)")
    assert {k: v for k, v in answers_in_db(factory, interview.id).items() if k in ("S2", "A1")} == {"S2": 1, "A1": 5}


def test_a_stale_second_tab_cannot_overwrite_an_answer(site, browser):
    url, factory = site["server"].url, site["factory"]
    context = browser.new_context(locale="zh-CN")
    first = context.new_page()
    first.set_default_timeout(60000)
    sign_in(first, url)
    next_and_dial(first)
    to_consent(first)
    second = context.new_page()  # the same session in a second tab, showing CONSENT too
    second.set_default_timeout(60000)
    second.goto(url + "/interviewer")
    second.wait_for_selector("body[data-console-ready='1']", state="attached")
    question_is(second, "CONSENT")
    answer_keys(first, ["1", "1"])  # consent yes, S1 = 1
    question_is(first, "S2")
    second.keyboard.press("2")  # the stale tab says "no consent"
    second.wait_for_selector("#save-state.bad >> text=本次回答未保存")
    question_is(second, "S2")  # it now shows where the interview really is
    with factory() as s:
        interview = s.scalars(select(Interview)).one()
    answers = answers_in_db(factory, interview.id)
    assert answers["CONSENT"] == 1 and answers["S1"] == 1 and interview.status == InterviewStatus.IN_PROGRESS


def test_wrapup_errors_in_view_typed_dates_keyboard_reach_and_hang_up_key(site, browser):
    url, factory, tz = site["server"].url, site["factory"], site["tz"]
    page = open_page(browser, viewport={"width": 1366, "height": 768}, locale="zh-CN")
    sign_in(page, url)
    console_ready(page)
    # The language switch and sign-out are reachable with Tab.
    reached = set()
    for _ in range(25):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert "lang-select" in reached and "退出" in reached
    page.goto(url + "/interviewer")
    next_and_dial(page)
    # A callback without its date: the error is on screen and the date field has the focus.
    page.keyboard.press("Escape")
    page.select_option("#outcome-select", "2.21")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#outcome-error:not(.hidden)")
    assert page.evaluate("document.activeElement.id") == "appt-date"
    box = page.locator("#appt-date").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 768, box
    assert page.locator("#outcome-error").bounding_box()["y"] < 768
    # A date typed the way people type it.
    day = (local(datetime.now(UTC), tz) + timedelta(days=2)).date()
    page.keyboard.type(day.strftime("%Y%m%d"))
    page.keyboard.press("Tab")
    assert page.input_value("#appt-date") == day.isoformat()
    page.select_option("#appt-time", index=4)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#btn-next")
    with factory() as s:
        appt = s.scalars(select(Appointment)).one()
    assert local(appt.due_at, tz).date() == day
    # A message that is not about a call is not labelled as one.
    assert "上一通电话" in page.inner_text("#last-call")


def test_f8_hangs_up_in_the_middle_of_the_interview(site, browser):
    url, factory = site["server"].url, site["factory"]
    page = open_page(browser, locale="zh-CN")
    sign_in(page, url)
    next_and_dial(page)
    to_consent(page)
    page.keyboard.press("F8")
    page.wait_for_selector("#call-state.cs-ended", timeout=30000)
    with factory() as s:
        attempt = s.scalars(select(CallAttempt)).one()
        assert attempt.status.value == "ended"


def test_a_refusal_at_consent_asks_for_its_reason_like_the_outcome_panel(site, browser):
    url, factory = site["server"].url, site["factory"]
    page = open_page(browser, locale="zh-CN")
    sign_in(page, url)
    next_and_dial(page)
    to_consent(page)
    page.keyboard.press("2")  # no consent: the script ends the interview as a refusal (2.112)
    page.wait_for_selector("#termination")
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'refusal-reason'")
    assert page.input_value("#outcome-select") == "2.112"
    page.select_option("#refusal-reason", "busy")
    page.fill("#note", "正在开会")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#btn-next")
    with factory() as s:
        interview = s.scalars(select(Interview)).one()
        attempt = s.get(CallAttempt, interview.attempt_id)
        assert interview.status == InterviewStatus.TERMINATED and interview.disposition == "2.112"
        assert attempt.outcome == "2.112" and "没时间" in attempt.notes and "正在开会" in attempt.notes
