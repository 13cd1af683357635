"""Test factories: build studies, enterprises, cases and users directly with the models (fast, explicit)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from cati.models import Case, CasePhone, CaseStatus, Enterprise, Industry, Replicate, Role, User
from cati.services.users import create_user

_seq = itertools.count(1)
# Monday 2026-11-23 10:00 Asia/Shanghai: inside the morning calling window.
MONDAY_10AM = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def weeks_later_than(moment: datetime, after: datetime) -> datetime:
    """``moment`` moved on by whole weeks until it is at or after ``after``: the same weekday and time of day,
    for tests that must act after something the code stamped with the wall clock (an import's release)."""
    weeks = max(0, -(-(after - moment) // timedelta(weeks=1)))
    return moment + timedelta(weeks=weeks)


def industry(session: Session, name: str = "银行") -> Industry:
    row = session.scalar(select(Industry).where(Industry.name == name))
    if row is None:
        row = Industry(name=name)
        session.add(row)
        session.flush()
    return row


def enterprise(session: Session, study, *, name: str | None = None, industry_name: str = "银行", quota: int = 20,
               completes: int = 0) -> Enterprise:
    n = next(_seq)
    row = Enterprise(study_id=study.id, external_id=f"E{n:04d}", name=name or f"企业{n}",
                     industry_id=industry(session, industry_name).id, province="广东", quota_target=quota,
                     completes=completes)
    session.add(row)
    session.flush()
    return row


def cases(session: Session, study, ent: Enterprise, n: int, *, status: CaseStatus = CaseStatus.READY,
          next_call_at: datetime = MONDAY_10AM, replicate: int = 1, timezone: str = "Asia/Shanghai") -> list[int]:
    """Insert ``n`` cases (one mobile number each) in bulk; returns their ids."""
    start = (session.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) or 0) + 1
    ids = list(range(start, start + n))
    session.execute(insert(Case), [
        dict(id=i, study_id=study.id, enterprise_id=ent.id, case_ref=f"C{i:08d}", replicate=replicate,
             status=status, timezone=timezone, next_call_at=next_call_at if status == CaseStatus.READY else None,
             attempts=0, tried_day_parts=0, needs_converter=False, attributes={}, imported_at=MONDAY_10AM)
        for i in ids
    ])
    session.execute(insert(CasePhone), [
        dict(study_id=study.id, case_id=i, position=1, e164=f"+86139{i:08d}", kind="mobile",
             timezone=timezone, status="ok", attempts=0)
        for i in ids
    ])
    if ids and session.get_bind().dialect.name == "postgresql":
        # Explicit ids leave PostgreSQL's sequence behind: move it on, so cases inserted later without an id
        # (an import in the same test) don't collide with these.
        session.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :last)"), {"last": ids[-1]})
    if session.scalar(select(Replicate.id).where(Replicate.enterprise_id == ent.id,
                                                 Replicate.number == replicate)) is None:
        session.add(Replicate(study_id=study.id, enterprise_id=ent.id, number=replicate, size=n,
                              released_at=MONDAY_10AM if status == CaseStatus.READY else None))
    session.flush()
    return ids


def user(session: Session, role: Role | str = Role.INTERVIEWER, *, username: str | None = None,
         password: str = "password-123", **kw) -> User:
    return create_user(session, username or f"user{next(_seq)}", password, role, **kw)


def lunchtime_of_no_answers(session: Session, study, tz: str, now: datetime, *, enterprises: int = 40,
                            per_enterprise: int = 10) -> None:
    """Issue 20's browser session: a fresh study of many enterprises in time zone ``tz``, and 30 dials of the last
    45 minutes that all rang out, settled (coded, over 10 minutes old): the contact model then finds this part
    of the day poor next to the coming evening and defers fresh sample to it."""
    from cati.models import CallAttempt
    from cati.services.calling import local

    dialed = []
    for k in range(enterprises):
        ent = enterprise(session, study, name=f"企业{k:02d}")
        ids = cases(session, study, ent, per_enterprise, timezone=tz, next_call_at=now - timedelta(hours=1))
        dialed.extend(ids[:1])
    for i, case_id in enumerate((dialed * 2)[:30]):
        at = now - timedelta(minutes=45) + timedelta(seconds=55 * i)
        case = session.get(Case, case_id)
        session.add(CallAttempt(call_id=f"lunch-{i}", case_id=case_id, backend="simulated", requested_at=at,
                                outcome="3.13", day_part="afternoon", tried_parts_before=0,
                                local_weekday=local(at, tz).weekday(),
                                prior_outcome=None if case.attempts == 0 else "3.13"))
        case.attempts, case.tried_day_parts, case.last_outcome = case.attempts + 1, 2, "3.13"
        case.last_called_at, case.next_call_at = at, now + timedelta(hours=3)
    session.flush()


def finished_fieldwork(session: Session, study, *, enterprises: int = 12, industries: int = 3, completes: int = 240,
                       seed: int = 1, provinces: tuple[str, ...] = ("广东", "江苏", "北京", "四川")):
    """A study whose fieldwork is done: ``enterprises`` enterprises in ``industries`` industries with ``completes``
    complete interviews in all, answers drawn by :func:`scoring.synthetic.make_synthetic_responses` (the scoring
    tests' generator, shaped like the reference study), an open answer with a phone number in it, written with
    bulk inserts (the 360-enterprise / 7,200-complete demo scale takes seconds). Returns the answers written."""
    import pandas as pd
    from sqlalchemy import func

    from cati.models import Answer, Interview, InterviewStatus, QCStatus
    from scoring.synthetic import make_synthetic_responses

    df = make_synthetic_responses(n_enterprises=enterprises, n_industries=industries, n_respondents=completes,
                                  seed=seed)
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    ivw = user(session, Role.INTERVIEWER, username=f"fw{next(_seq)}")
    ents = {}
    for k, (eid, grp) in enumerate(df.groupby("enterprise_id", sort=True)):
        ent = enterprise(session, study, name=str(grp["enterprise_name"].iloc[0]),
                         industry_name=str(grp["industry"].iloc[0]), completes=len(grp))
        ent.province = provinces[k % len(provinces)]
        ents[eid] = ent.id
    session.flush()
    case0 = (session.scalar(select(func.max(Case.id))) or 0) + 1
    ivw0 = (session.scalar(select(func.max(Interview.id))) or 0) + 1
    items = [f"{b}{i}" for b, n in zip("ABCDEF", (4, 4, 4, 3, 3, 4), strict=True) for i in range(1, n + 1)]
    codes = [c for c in [*items, "D0", "Q0", "CB1"] if c in df.columns]
    cases, phones, interviews, answers = [], [], [], []
    for i, row in enumerate(df.itertuples(index=False)):
        cid, iid = case0 + i, ivw0 + i
        cases.append({"id": cid, "study_id": study.id, "enterprise_id": ents[row.enterprise_id],
                      "case_ref": f"FW{cid}", "status": CaseStatus.FINAL, "final_disposition": "1.1", "attempts": 1,
                      "attributes": {}, "imported_at": at, "finalized_at": at})
        phones.append({"study_id": study.id, "case_id": cid, "e164": f"+86139{cid:08d}", "position": 1})
        interviews.append({"id": iid, "study_id": study.id, "case_id": cid, "interviewer_id": ivw.id,
                           "status": InterviewStatus.COMPLETE, "qc_status": QCStatus.UNREVIEWED, "language": "zh-CN",
                           "started_at": at, "ended_at": at, "disposition": "1.1"})
        values = row._asdict()
        for code in codes:
            v = values[code]
            if not pd.isna(v):
                answers.append({"interview_id": iid, "question_code": code, "value_code": int(v), "answered_at": at})
        answers.append({"interview_id": iid, "question_code": "OPEN1", "value_text": f"希望更快接通，回电139{cid:08d}",
                        "answered_at": at})
    for model, rows in ((Case, cases), (CasePhone, phones), (Interview, interviews), (Answer, answers)):
        for start in range(0, len(rows), 5000):
            session.execute(insert(model), rows[start:start + 5000])
    session.flush()
    return df
