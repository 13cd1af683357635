"""A small dict-based translation for the web screens: zh-CN first, en selectable.

Templates call ``t("key")`` (or ``t("key", n=3)`` with ``str.format`` fields). A key missing from the table is
a programming error: in testing it raises, in production it shows the key, so a gap is visible, not silent.
"""

from __future__ import annotations

from flask import Flask, current_app, session

LANGUAGES = ("zh-CN", "en")
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}

T: dict[str, dict[str, str]] = {
    # ---- layout / auth
    "app_name": {"zh-CN": "CATI 电话调查系统", "en": "CATI telephone survey"},
    "login": {"zh-CN": "登录", "en": "Sign in"},
    "logout": {"zh-CN": "退出", "en": "Sign out"},
    "username": {"zh-CN": "用户名", "en": "Username"},
    "password": {"zh-CN": "密码", "en": "Password"},
    "login_title": {"zh-CN": "访员 / 督导登录", "en": "Sign in"},
    "login_failed": {"zh-CN": "用户名或密码错误", "en": "Wrong username or password"},
    "login_blocked": {"zh-CN": "登录失败次数过多，请 15 分钟后再试", "en": "Too many failed sign-ins; try again in 15 minutes"},
    "signed_out": {"zh-CN": "您已退出登录", "en": "You are signed out"},
    "language": {"zh-CN": "语言", "en": "Language"},
    "signed_in_as": {"zh-CN": "当前用户", "en": "Signed in as"},
    "forbidden": {"zh-CN": "无权访问此页面", "en": "You may not open this page"},
    "bad_request": {"zh-CN": "请求无效", "en": "Bad request"},
    "unauthorized": {"zh-CN": "请先登录", "en": "Please sign in first"},
    "not_found": {"zh-CN": "页面不存在", "en": "Page not found"},
    "csrf_error": {"zh-CN": "表单已过期或无效，请刷新页面后重试", "en": "The form expired or is invalid; reload the page and try again"},
    "back_home": {"zh-CN": "返回首页", "en": "Back to the start page"},
    "error": {"zh-CN": "错误", "en": "Error"},
    "role_interviewer": {"zh-CN": "访员", "en": "Interviewer"},
    "role_supervisor": {"zh-CN": "督导", "en": "Supervisor"},
    "role_analyst": {"zh-CN": "分析师", "en": "Analyst"},
    "role_admin": {"zh-CN": "管理员", "en": "Administrator"},
    # ---- status bar
    "console": {"zh-CN": "访员工作台", "en": "Interviewer console"},
    "status": {"zh-CN": "状态", "en": "Status"},
    "st_offline": {"zh-CN": "离线", "en": "Offline"},
    "st_ready": {"zh-CN": "就绪", "en": "Ready"},
    "st_paused": {"zh-CN": "暂停", "en": "Paused"},
    "st_dialing": {"zh-CN": "拨号中", "en": "Dialing"},
    "st_talking": {"zh-CN": "通话中", "en": "Talking"},
    "st_wrapup": {"zh-CN": "话后处理", "en": "Wrap-up"},
    "since": {"zh-CN": "开始于", "en": "since"},
    "pause": {"zh-CN": "暂停", "en": "Pause"},
    "ready": {"zh-CN": "就绪", "en": "Ready"},
    "pr_break": {"zh-CN": "休息", "en": "Break"},
    "pr_meal": {"zh-CN": "用餐", "en": "Meal"},
    "pr_training": {"zh-CN": "培训", "en": "Training"},
    "pr_meeting": {"zh-CN": "开会", "en": "Meeting"},
    "pr_technical": {"zh-CN": "设备故障", "en": "Technical problem"},
    "pr_other": {"zh-CN": "其他", "en": "Other"},
    "pause_reason": {"zh-CN": "暂停原因", "en": "Pause reason"},
    "dials": {"zh-CN": "拨号", "en": "Dials"},
    "contacts": {"zh-CN": "接触", "en": "Contacts"},
    "completes": {"zh-CN": "成功", "en": "Completes"},
    "completes_per_hour": {"zh-CN": "每小时成功", "en": "Completes/hour"},
    "shift": {"zh-CN": "本班次", "en": "This shift"},
    "dial_mode": {"zh-CN": "拨号方式", "en": "Dialing"},
    "mode_preview": {"zh-CN": "预览拨号", "en": "Preview"},
    "mode_progressive": {"zh-CN": "自动拨号", "en": "Progressive"},
    "grid_mode": {"zh-CN": "量表题以表格显示", "en": "Rating items as a grid"},
    "save": {"zh-CN": "保存", "en": "Save"},
    # ---- idle / next case
    "paused_text": {"zh-CN": "您处于暂停状态。点击“就绪”继续拨打。", "en": "You are paused. Press Ready to continue calling."},
    "next_case": {"zh-CN": "下一个样本", "en": "Next case"},
    "no_case": {"zh-CN": "暂无可拨样本", "en": "No case to call"},
    "next_callable_at": {"zh-CN": "最早可拨时间", "en": "Next callable"},
    "progressive_waiting": {"zh-CN": "自动拨号：就绪后系统将自动分配并拨打下一个样本…", "en": "Progressive: the next case is dialed as soon as you are ready…"},
    "last_call": {"zh-CN": "上一通电话", "en": "Last call"},
    # ---- case panel
    "case": {"zh-CN": "样本", "en": "Case"},
    "enterprise": {"zh-CN": "企业", "en": "Enterprise"},
    "industry": {"zh-CN": "行业", "en": "Industry"},
    "phone": {"zh-CN": "电话", "en": "Phone"},
    "local_time": {"zh-CN": "受访者当地时间", "en": "Respondent's local time"},
    "attempts": {"zh-CN": "已拨次数", "en": "Attempts"},
    "history": {"zh-CN": "拨打记录", "en": "Call history"},
    "no_history": {"zh-CN": "尚未拨打过", "en": "Never called"},
    "time": {"zh-CN": "时间", "en": "Time"},
    "number": {"zh-CN": "号码", "en": "Number"},
    "outcome": {"zh-CN": "结果", "en": "Outcome"},
    "notes": {"zh-CN": "备注", "en": "Notes"},
    "interviewer": {"zh-CN": "访员", "en": "Interviewer"},
    "appointment": {"zh-CN": "预约", "en": "Appointment"},
    "appointment_due": {"zh-CN": "预约回访时间", "en": "Appointment due"},
    "source_own_claim": {"zh-CN": "继续处理您手上的样本", "en": "Your open case"},
    "source_own_appointment": {"zh-CN": "您的预约", "en": "Your appointment"},
    "source_appointment": {"zh-CN": "预约回访", "en": "Appointment"},
    "source_callable": {"zh-CN": "新样本", "en": "Next in queue"},
    "intro_script": {"zh-CN": "开场白", "en": "Introduction"},
    "dial": {"zh-CN": "拨号", "en": "Dial"},
    "hangup": {"zh-CN": "挂断", "en": "Hang up"},
    "call_state": {"zh-CN": "通话状态", "en": "Call"},
    "cs_requested": {"zh-CN": "正在发起呼叫…", "en": "Requesting…"},
    "cs_placed": {"zh-CN": "已发起呼叫", "en": "Placed"},
    "cs_ringing": {"zh-CN": "振铃中", "en": "Ringing"},
    "cs_answered": {"zh-CN": "已接通", "en": "Answered"},
    "cs_detecting": {"zh-CN": "已接听，正在识别是否真人…", "en": "Answered, checking for an answering machine…"},
    "amd_pending": {"zh-CN": "正在识别是否真人接听，请稍候再开始访问", "en": "Still checking for an answering machine: "
                    "start the interview once a person is confirmed"},
    "cs_machine": {"zh-CN": "语音信箱/答录机", "en": "Answering machine"},
    "cs_ended": {"zh-CN": "已结束", "en": "Ended"},
    "start_interview": {"zh-CN": "开始访问", "en": "Start interview"},
    "resume_interview": {"zh-CN": "继续访问", "en": "Resume interview"},
    "resume_note": {"zh-CN": "此样本有未完成的访问，将从第 {pos} 题继续（已保存 {n} 个回答）",
                    "en": "This case has an unfinished interview; it resumes at question {pos} ({n} answers saved)"},
    "dial_failed": {"zh-CN": "拨号失败", "en": "Dialing failed"},
    "no_phone": {"zh-CN": "此样本没有可拨号码", "en": "This case has no dialable number"},
    "quota_full": {"zh-CN": "该企业配额已满，不能开始新的访问", "en": "The enterprise's quota is full; no new interview"},
    "not_your_case": {"zh-CN": "此样本不在您手上", "en": "This case is not yours"},
    "code_call": {"zh-CN": "结束通话并记录结果", "en": "End the call and code the outcome"},
    "wd_0": {"zh-CN": "周一", "en": "Mon"},
    "wd_1": {"zh-CN": "周二", "en": "Tue"},
    "wd_2": {"zh-CN": "周三", "en": "Wed"},
    "wd_3": {"zh-CN": "周四", "en": "Thu"},
    "wd_4": {"zh-CN": "周五", "en": "Fri"},
    "wd_5": {"zh-CN": "周六", "en": "Sat"},
    "wd_6": {"zh-CN": "周日", "en": "Sun"},
    # ---- interview
    "question": {"zh-CN": "题目", "en": "Question"},
    "progress": {"zh-CN": "进度", "en": "Progress"},
    "back": {"zh-CN": "上一题", "en": "Back"},
    "confirm": {"zh-CN": "确认", "en": "Confirm"},
    "continue": {"zh-CN": "继续", "en": "Continue"},
    "keys_help": {"zh-CN": "键盘：数字键作答并进入下一题 · 8 不适用 · 9 不知道 · Enter 确认 · Backspace 上一题 · Esc 结束通话",
                  "en": "Keys: digits answer and advance · 8 n/a · 9 don't know · Enter confirm · Backspace back · Esc end call"},
    "open_help": {"zh-CN": "输入回答后按 Enter 保存（Shift+Enter 换行）；输入框为空时 Backspace 返回上一题",
                  "en": "Type the answer and press Enter (Shift+Enter: new line); Backspace on an empty box goes back"},
    "numeric_help": {"zh-CN": "输入数字后按 Enter", "en": "Type a number and press Enter"},
    "saving": {"zh-CN": "保存中…", "en": "Saving…"},
    "saved": {"zh-CN": "已保存", "en": "Saved"},
    "save_failed": {"zh-CN": "保存失败，请重试（回答未丢失）", "en": "Saving failed; try again (nothing was lost)"},
    "terminated": {"zh-CN": "根据回答，访问在此结束", "en": "The answers end the interview here"},
    "terminated_confirm": {"zh-CN": "按 Enter 确认结束，Backspace 返回修改", "en": "Enter confirms the end, Backspace goes back to correct"},
    "complete_interview": {"zh-CN": "完成访问", "en": "Complete the interview"},
    "interview_complete": {"zh-CN": "访问已完成并保存", "en": "Interview completed and saved"},
    "interview_ended": {"zh-CN": "访问已结束", "en": "Interview ended"},
    "grid_help": {"zh-CN": "表格模式：数字键为当前行作答并移到下一行", "en": "Grid: a digit answers the current row and moves down"},
    "current_answer": {"zh-CN": "已答", "en": "Answered"},
    # ---- outcome form
    "outcome_title": {"zh-CN": "记录通话结果", "en": "Code the call"},
    "choose_outcome": {"zh-CN": "选择结果", "en": "Choose an outcome"},
    "note": {"zh-CN": "备注", "en": "Note"},
    "note_required": {"zh-CN": "此结果必须填写备注", "en": "This outcome needs a note"},
    "refusal_reason": {"zh-CN": "拒访原因", "en": "Refusal reason"},
    "refusal_reason_required": {"zh-CN": "请选择拒访原因", "en": "Choose a refusal reason"},
    "rr_busy": {"zh-CN": "没时间", "en": "Too busy"},
    "rr_not_interested": {"zh-CN": "不感兴趣", "en": "Not interested"},
    "rr_privacy": {"zh-CN": "担心隐私", "en": "Privacy concerns"},
    "rr_distrust": {"zh-CN": "怀疑调查真实性", "en": "Distrusts the survey"},
    "rr_too_long": {"zh-CN": "访问太长", "en": "Interview too long"},
    "rr_hostile": {"zh-CN": "态度激烈", "en": "Hostile"},
    "rr_other": {"zh-CN": "其他", "en": "Other"},
    "appointment_time": {"zh-CN": "预约时间（受访者当地时间）", "en": "Appointment (respondent's local time)"},
    "appointment_date": {"zh-CN": "日期", "en": "Date"},
    "appointment_clock": {"zh-CN": "时间", "en": "Time"},
    "appointment_required": {"zh-CN": "此结果需要预约时间", "en": "This outcome needs an appointment time"},
    "appointment_outside": {"zh-CN": "预约时间不在允许拨打的时段内", "en": "The appointment is outside the calling hours"},
    "appointment_past": {"zh-CN": "预约时间不能早于现在", "en": "The appointment cannot be in the past"},
    "appointment_bad": {"zh-CN": "预约时间格式不正确", "en": "The appointment time is not valid"},
    "quick_1h": {"zh-CN": "1小时后", "en": "In 1 hour"},
    "quick_tonight": {"zh-CN": "今晚", "en": "Tonight"},
    "quick_tomorrow": {"zh-CN": "明天上午", "en": "Tomorrow morning"},
    "for_anyone": {"zh-CN": "任何访员均可回访", "en": "Any interviewer may call back"},
    "calling_hours": {"zh-CN": "可拨打时段", "en": "Calling hours"},
    "weekdays": {"zh-CN": "工作日", "en": "Weekdays"},
    "weekends": {"zh-CN": "周末", "en": "Weekends"},
    "submit_outcome": {"zh-CN": "保存结果", "en": "Save outcome"},
    "outcome_invalid": {"zh-CN": "此结果与当前通话状态不符", "en": "That outcome does not fit this call"},
    "outcome_saved": {"zh-CN": "结果已保存：{label}", "en": "Outcome saved: {label}"},
    "auto_outcome": {"zh-CN": "系统自动记录：{label}", "en": "Coded automatically: {label}"},
    "cancel": {"zh-CN": "取消", "en": "Cancel"},
    "call_live_warning": {"zh-CN": "通话仍在进行，保存结果时将挂断", "en": "The call is still live; saving hangs up"},
}


def current_language() -> str:
    """The visitor's language: their choice in this session, else the signed-in user's, else the default."""
    lang = session.get("lang")
    if lang in LANGUAGES:
        return lang
    from flask import g

    user = g.get("user")
    if user is not None and user.language in LANGUAGES:
        return user.language
    return current_app.config.get("DEFAULT_LANGUAGE", "zh-CN")


def translate(key: str, lang: str | None = None, **fields) -> str:
    """The text of ``key`` in ``lang`` (default: the current language), with ``fields`` filled in."""
    entry = T.get(key)
    if entry is None:
        if current_app and current_app.testing:
            raise KeyError(f"i18n: no translation for key {key!r}")
        return key
    text = entry.get(lang or current_language()) or entry["zh-CN"]
    return text.format(**fields) if fields else text


t = translate


def init_i18n(app: Flask) -> None:
    """Make ``t``, ``lang`` and the language list available in every template."""

    @app.context_processor
    def _inject():
        return {"t": translate, "lang": current_language(), "LANGUAGES": LANGUAGES,
                "LANGUAGE_NAMES": LANGUAGE_NAMES}
