"""The one bridge from the database to pandas: frames for scoring, reports and exports.

Each function runs a few ``select()`` queries with joins (no per-row ORM loading) and builds the frame with
``DataFrame.from_records``, so 100k cases or attempts take about a second. Timestamps come back as
timezone-aware UTC ``datetime64`` columns. Phone numbers are masked (``138****1234``) unless the caller, who
has checked the user's permission, asks for them in full.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from cati.i18n import KeyedError
from cati.models import (
    Answer,
    CallAttempt,
    Case,
    CasePhone,
    CaseStatus,
    Enterprise,
    Industry,
    Interview,
    InterviewStatus,
    QCStatus,
    Study,
    User,
)

from .dispositions import catalogue, final_disposition
from .phones import mask_phone
from .runtime import runtime_for

__all__ = ["GROUPINGS", "RATE_COLUMNS", "attempts_frame", "cases_frame", "dispositions_frame", "rates",
           "responses_frame", "study_questions"]

ID_COLUMNS = ["respondent_id", "enterprise_id", "enterprise_name", "industry", "province"]


def _exec(session: Session, stmt):
    """Run a column-only select at the Core level: the ORM's per-row loading layer would double the time of
    a 100k-row frame and adds nothing when no entities are loaded."""
    session.flush()
    return session.connection().execute(stmt)


def _study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise LookupError(f"no study with id {study_id}")
    return study


def study_questions(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, type) of every question that takes an answer, in questionnaire order (``info`` screens skipped)."""
    out = []
    for q in definition.get("questions") or []:
        if isinstance(q, dict) and q.get("code") and q.get("type") != "info":
            out.append((str(q["code"]), str(q.get("type") or "single")))
    return out


def _utc(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    for c in columns:
        frame[c] = pd.to_datetime(frame[c], utc=True)


def responses_frame(session: Session, study_id: int, *, complete_only: bool = True,
                    include_phone: bool = False) -> pd.DataFrame:
    """One row per interview, one column per question: the input of scoring and of the data exports.

    Parameters
    ----------
    session : Session
    study_id : int
    complete_only : bool
        Only COMPLETE interviews that QC did not reject (default). Otherwise every interview, with its
        ``status`` (``complete``, ``partial``, ``in_progress``, ``terminated``) so scoring still counts only
        completes.
    include_phone : bool
        Add ``phone``: the case's first number **in full** (E.164). The caller checks that the user may see it.

    Returns
    -------
    DataFrame
        ``respondent_id`` (interview id), ``enterprise_id`` (the client's id), ``enterprise_name``, ``industry``
        (zh name), ``province``; then one column per question of the study, in questionnaire order, present
        even when nobody answered it — answer codes as floats (NaN = not asked), multiple-choice codes as text
        ``"1,3,97"`` followed by the ``<code>_other`` text of an "other, please specify" option, or, for open
        questions, the text; then ``case_ref, status, qc_status, interviewer, language, started_at, ended_at, mode``
        (``cati`` or ``cawi``; and
        ``phone``); then the case's sample attributes as ``attr_<name>``. Answers to codes no longer in the
        study are kept as extra columns after the study's questions.
    """
    study = _study(session, study_id)
    questions = study_questions(study.definition or {})
    q_type = dict(questions)
    ivw = aliased(User)
    query = (
        select(Interview.id, Enterprise.external_id, Enterprise.name, Industry.name, Enterprise.province,
               Case.case_ref, Interview.status, Interview.qc_status, ivw.username, Interview.language,
               Interview.started_at, Interview.ended_at, Case.attributes, Case.id, Interview.mode)
        .join(Case, Case.id == Interview.case_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(Industry, Industry.id == Enterprise.industry_id)
        .outerjoin(ivw, ivw.id == Interview.interviewer_id)
        .where(Interview.study_id == study_id)
        .order_by(Interview.id)
    )
    if complete_only:
        query = query.where(Interview.status == InterviewStatus.COMPLETE, Interview.qc_status != QCStatus.REJECTED)
    rows = _exec(session, query).all()
    meta_cols = ["case_ref", "status", "qc_status", "interviewer", "language", "started_at", "ended_at", "mode"]
    ids = [r[0] for r in rows]

    answers: dict[str, dict[int, Any]] = defaultdict(dict)
    if ids:
        aq = select(Answer.interview_id, Answer.question_code, Answer.value_code, Answer.value_text) \
            .join(Interview, Interview.id == Answer.interview_id).where(Interview.study_id == study_id)
        if complete_only:
            aq = aq.where(Interview.status == InterviewStatus.COMPLETE, Interview.qc_status != QCStatus.REJECTED)
        for iid, code, vcode, vtext in _exec(session, aq):
            kind = q_type.get(code)
            if kind in ("open", "multi") or (kind is None and vcode is None):
                # Open text (or its prefer-not-to-say code), a multi answer's codes as "1,3,97", an "other,
                # please specify" text (<code>_other).
                answers[code][iid] = vtext if vtext is not None else vcode
            else:
                answers[code][iid] = vcode

    frame = pd.DataFrame.from_records(
        [(r[0], r[1], r[2], r[3], r[4]) for r in rows], columns=ID_COLUMNS)
    index = pd.Index(ids)
    cols: dict[str, Any] = {}
    # A question with an "other, please specify" option is followed by its text column <code>_other.
    with_other = {str(q["code"]) for q in (study.definition or {}).get("questions") or []
                  if isinstance(q, dict) and q.get("other_code") is not None}
    ordered = [x for c, _ in questions for x in ((c, f"{c}_other") if c in with_other else (c,))]
    with_other_cols = {f"{c}_other" for c in with_other}
    extra_codes = [c for c in answers if c not in ordered]
    for code in ordered + sorted(extra_codes):
        got = answers.get(code, {})
        if q_type.get(code) in ("open", "multi") or (code not in q_type and (
                code in with_other_cols or any(isinstance(v, str) for v in got.values()))):
            cols[code] = pd.Series([got.get(i) for i in ids], index=index, dtype=object)
        else:
            cols[code] = pd.Series([got.get(i, np.nan) for i in ids], index=index, dtype="float64")
    meta = {
        "case_ref": [r[5] for r in rows],
        "status": [r[6].value if r[6] is not None else None for r in rows],
        "qc_status": [r[7].value if r[7] is not None else None for r in rows],
        "interviewer": [r[8] for r in rows],
        "language": [r[9] for r in rows],
        "started_at": [r[10] for r in rows],
        "ended_at": [r[11] for r in rows],
        "mode": [r[14] for r in rows],
    }
    parts = [frame, pd.DataFrame({k: v.to_numpy() for k, v in cols.items()}, columns=list(cols)),
             pd.DataFrame(meta, columns=meta_cols)]
    if include_phone:
        first = _first_phones(session, [r[13] for r in rows])
        parts.append(pd.DataFrame({"phone": [first.get(r[13]) for r in rows]}))
    attr_keys: dict[str, None] = {}
    for r in rows:
        for k in (r[12] or {}):
            attr_keys.setdefault(k, None)
    if attr_keys:
        parts.append(pd.DataFrame({f"attr_{k}": [(r[12] or {}).get(k) for r in rows] for k in attr_keys}))
    out = pd.concat(parts, axis=1)
    _utc(out, ["started_at", "ended_at"])
    return out


def _first_phones(session: Session, case_ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(case_ids), 5000):
        chunk = case_ids[start:start + 5000]
        for cid, e164 in _exec(
                session, select(CasePhone.case_id, CasePhone.e164).where(CasePhone.case_id.in_(chunk))
                .order_by(CasePhone.case_id, CasePhone.position.desc())):
            out[cid] = e164  # ordered by position descending: position 1 is written last
    return out


def _attempt_summary(session: Session, study_id: int) -> tuple[dict[int, list[str]], dict[int, str | None]]:
    """Per case: its attempt outcomes oldest first, and the username of the interviewer of its last attempt."""
    outcomes: dict[int, list[str]] = defaultdict(list)
    last_by: dict[int, str | None] = {}
    for cid, outcome, username in _exec(
            session, select(CallAttempt.case_id, CallAttempt.outcome, User.username)
            .join(Case, Case.id == CallAttempt.case_id)
            .outerjoin(User, User.id == CallAttempt.interviewer_id)
            .where(Case.study_id == study_id)
            .order_by(CallAttempt.case_id, CallAttempt.requested_at, CallAttempt.id)):
        if outcome:
            outcomes[cid].append(outcome)
        last_by[cid] = username
    return outcomes, last_by


def _rate_code(status: CaseStatus, final: str | None, attempts: int, outcomes: list[str] | None) -> str | None:
    """The AAPOR code a case counts as in rates: its final disposition; for an open case the code its
    attempts imply if it were closed now (same precedence as the final rule at the attempt cap); never
    dialed → 3.11; unreleased sample → None (not part of the rates)."""
    if not final and status == CaseStatus.UNRELEASED:
        return None
    return _released_code(final, attempts, outcomes)


def _released_code(final: str | None, attempts: int, outcomes: list[str] | None) -> str:
    """The code a released case counts as (see :func:`_rate_code`)."""
    if final:
        return final
    if not outcomes:
        return catalogue().code_for("not_attempted" if attempts == 0 else "other_unknown")
    try:
        return final_disposition(outcomes, cap_reached=True) or catalogue().code_for("other_unknown")
    except (KeyError, ValueError):
        return catalogue().code_for("other_unknown")


def _case_rows(session: Session, study_id: int):
    return _exec(
        session,
        select(Case.id, Case.case_ref, Enterprise.external_id, Enterprise.name, Industry.name, Enterprise.province,
               Case.status, Case.final_disposition, Case.attempts, Case.last_outcome, Case.replicate,
               Case.last_called_at, Case.finalized_at)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(Industry, Industry.id == Enterprise.industry_id)
        .where(Case.study_id == study_id)
        .order_by(Case.id)
    ).all()


CASE_COLUMNS = ["case_id", "case_ref", "enterprise_id", "enterprise_name", "industry", "province", "status",
                "final_disposition", "disposition", "attempts", "last_outcome", "replicate", "interviewer",
                "last_called_at"]


def cases_frame(session: Session, study_id: int) -> pd.DataFrame:
    """One row per case of the study.

    Columns: ``case_id, case_ref, enterprise_id`` (the client's id), ``enterprise_name, industry, province,
    status, final_disposition, disposition`` (the code for AAPOR rates, see :func:`dispositions_frame`; None
    for unreleased sample), ``attempts, last_outcome, replicate, interviewer`` (username of the last
    attempt's interviewer), ``last_called_at`` (UTC).
    """
    _study(session, study_id)
    outcomes, last_by = _attempt_summary(session, study_id)
    records = [
        (cid, ref, ext, name, ind, prov, status.value, final, _rate_code(status, final, att, outcomes.get(cid)),
         att, last_outcome, rep, last_by.get(cid), last_at)
        for cid, ref, ext, name, ind, prov, status, final, att, last_outcome, rep, last_at, _fin in
        _case_rows(session, study_id)
    ]
    frame = pd.DataFrame.from_records(records, columns=CASE_COLUMNS)
    _utc(frame, ["last_called_at"])
    return frame


DISPOSITION_COLUMNS = ["case_id", "enterprise_id", "enterprise", "industry", "region", "province", "interviewer_id",
                       "interviewer", "username", "day", "final", "disposition"]


def dispositions_frame(session: Session, study: Study | int, *, tz: str | None = None) -> pd.DataFrame:
    """One row per released case with the AAPOR code it counts as now — the one source for every rate table
    (the supervisors' outcomes screen, the fieldwork and industry reports, the demo).

    The code is the case's final disposition; for a case still open, the code its attempts imply if it were
    closed now (AAPOR's practice for interim rates; the same precedence as the final rule at the attempt cap,
    see ``dispositions.final_disposition``), 3.90 when it was dialed but nothing was coded yet, or 3.11 (not
    attempted) when it was never dialed. Unreleased sample is not part of the rates and is left out. A
    rejected complete counts by its case's current state (QC reopened the case).

    Columns: ``case_id``, ``enterprise_id`` (the client's id), ``enterprise`` (name), ``industry``, ``region``,
    ``province``, ``interviewer_id``, ``interviewer`` (display name) and ``username`` of the last dial — or of
    the last interview for a case never dialed through the system (paper, imported) —, ``day`` (local date in
    ``tz``, default the study's ``calling_rules.timezone_default``, of the final code or the last call; empty
    if never called), ``final`` (bool), ``disposition``.
    """
    if tz is None:  # the study's own zone (a caller that knows the zone spares reading the study row)
        study = study if isinstance(study, Study) else _study(session, study)
        tz = runtime_for(study).timezone
    study_id = study.id if isinstance(study, Study) else study
    zi = ZoneInfo(tz)
    cases = _exec(
        session,
        select(Case.id, Enterprise.external_id, Enterprise.name, Industry.name, Enterprise.region,
               Enterprise.province, Case.final_disposition, Case.finalized_at, Case.last_called_at, Case.attempts)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(Industry, Industry.id == Enterprise.industry_id)
        .where(Case.study_id == study_id, Case.status != CaseStatus.UNRELEASED)
        .order_by(Case.id)
    ).all()
    if not cases:
        return pd.DataFrame(columns=DISPOSITION_COLUMNS)
    last_dial = select(func.max(CallAttempt.id)).join(Case, Case.id == CallAttempt.case_id) \
        .where(Case.study_id == study_id).group_by(CallAttempt.case_id)
    last_interview = select(func.max(Interview.id)).where(Interview.study_id == study_id) \
        .group_by(Interview.case_id)
    who = dict(_exec(session, select(Interview.case_id, Interview.interviewer_id)
                     .where(Interview.id.in_(last_interview))).all())
    who.update(_exec(session, select(CallAttempt.case_id, CallAttempt.interviewer_id)
                     .where(CallAttempt.id.in_(last_dial))).all())
    users = {uid: (name, login) for uid, name, login in _exec(session, select(User.id, User.display_name,
                                                                                User.username))}
    open_dialed = [c[0] for c in cases if c[6] is None and c[9] > 0]
    outcomes: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(open_dialed), 5000):
        for cid, outcome in _exec(
                session, select(CallAttempt.case_id, CallAttempt.outcome)
                .where(CallAttempt.case_id.in_(open_dialed[start:start + 5000]), CallAttempt.outcome.is_not(None))
                .order_by(CallAttempt.case_id, CallAttempt.requested_at, CallAttempt.id)):
            outcomes[cid].append(outcome)
    records = []
    for cid, ext, name, industry, region, province, final, fin_at, last_at, attempts in cases:
        code = _released_code(final, attempts, outcomes.get(cid))  # unreleased sample is not selected
        when = fin_at or last_at
        uid = who.get(cid)
        display, login = users.get(uid, (None, None))
        records.append((cid, ext, name, industry, region or "", province or "", uid, display or login or "—", login,
                        when.astimezone(zi).date().isoformat() if when else "", final is not None, code))
    return pd.DataFrame.from_records(records, columns=DISPOSITION_COLUMNS)


RATE_COLUMNS = ("RR1", "RR2", "RR3", "RR4", "RR5", "RR6", "COOP1", "COOP2", "COOP3", "COOP4", "REF1", "REF2",
                "REF3", "CON1", "CON2", "CON3")
#: The groups rates are shown by (screen name → column of :func:`dispositions_frame`).
GROUPINGS = {"study": None, "industry": "industry", "enterprise": "enterprise", "interviewer": "interviewer",
             "day": "day", "region": "region"}


def rates(dispositions: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """AAPOR RR/COOP/REF/CON rates with e (``scoring.response_rates``) over a :func:`dispositions_frame`, for
    the study or per group (``by`` one of the :data:`GROUPINGS` columns). Cases never called have no day and
    are left out of the rates by day.
    """
    from scoring import response_rates

    if by is not None and by not in GROUPINGS.values():
        raise KeyedError("rates_by_unknown", by=by, keys=", ".join(k for k in GROUPINGS if GROUPINGS[k]))
    if dispositions.empty:
        return pd.DataFrame(columns=([by] if by else []) + ["n", "e", *RATE_COLUMNS])
    frame = dispositions if by != "day" else dispositions[dispositions["day"] != ""]
    return response_rates(frame, by=by)


ATTEMPT_COLUMNS = ["call_id", "case_id", "enterprise_id", "industry", "interviewer", "backend", "mode",
                   "requested_at", "placed_at", "ringing_at", "answered_at", "ended_at", "hangup_cause",
                   "machine_detection", "outcome", "day_part", "phone"]


def attempts_frame(session: Session, study_id: int, *, mask_phones: bool = True) -> pd.DataFrame:
    """One row per call attempt (dial) of the study, oldest first.

    Columns: ``call_id, case_id, enterprise_id`` (client's id), ``industry, interviewer`` (username),
    ``backend, mode, requested_at, placed_at, ringing_at, answered_at, ended_at`` (UTC), ``hangup_cause``
    (Q.850, nullable integer), ``machine_detection, outcome, day_part, phone`` (masked ``138****1234`` unless
    ``mask_phones=False``, which the caller only asks for a user allowed to see numbers).
    """
    _study(session, study_id)
    rows = _exec(
        session,
        select(CallAttempt.call_id, CallAttempt.case_id, Enterprise.external_id, Industry.name, User.username,
               CallAttempt.backend, CallAttempt.mode, CallAttempt.requested_at, CallAttempt.placed_at,
               CallAttempt.ringing_at, CallAttempt.answered_at, CallAttempt.ended_at, CallAttempt.hangup_cause,
               CallAttempt.machine_detection, CallAttempt.outcome, CallAttempt.day_part, CasePhone.e164)
        .join(Case, Case.id == CallAttempt.case_id)
        .join(Enterprise, Enterprise.id == Case.enterprise_id)
        .join(Industry, Industry.id == Enterprise.industry_id)
        .outerjoin(User, User.id == CallAttempt.interviewer_id)
        .outerjoin(CasePhone, CasePhone.id == CallAttempt.phone_id)
        .where(Case.study_id == study_id)
        .order_by(CallAttempt.requested_at, CallAttempt.id)
    ).all()
    if mask_phones:
        cache: dict[str, str] = {}
        rows = [(*r[:-1], (cache.get(r[-1]) or cache.setdefault(r[-1], mask_phone(r[-1]))) if r[-1] else None)
                for r in rows]
    frame = pd.DataFrame.from_records(rows, columns=ATTEMPT_COLUMNS)
    _utc(frame, ["requested_at", "placed_at", "ringing_at", "answered_at", "ended_at"])
    frame["hangup_cause"] = frame["hangup_cause"].astype("Int64")
    return frame
