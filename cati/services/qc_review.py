"""QC reviews a supervisor records for an interview: scores per criterion (1–5) after listening to the call, and the
result of a back-check call to the respondent. A review is evidence beside the verify / reject decision of
:mod:`cati.services.qc` (which stays the supervisor's), and is audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import Interview, QCReview, User

from . import audit

#: What a listener scores: the opening (greeting, agent ID, purpose), the questions read as written, probing
#: without leading, neutrality, pace and clarity, and answers keyed as the respondent gave them.
CRITERIA = ("opening", "reading", "probing", "neutrality", "clarity", "coding")
BACKCHECKS = ("confirmed", "not_reached", "denied", "discrepancy")


class ReviewError(KeyedError):
    """A review that cannot be recorded."""


def record(session: Session, interview_id: int, scores: Mapping[str, str | int | None], backcheck: str | None,
           note: str | None, now: datetime, *, user_id: int) -> QCReview:
    if session.get(Interview, interview_id) is None:
        raise ReviewError("interview_not_found", id=interview_id)
    clean: dict[str, int] = {}
    for key in CRITERIA:
        raw = scores.get(key)
        if raw in (None, ""):
            continue
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ReviewError("qc_score_invalid", criterion=key, value=raw) from None
        if not 1 <= value <= 5:
            raise ReviewError("qc_score_invalid", criterion=key, value=raw)
        clean[key] = value
    backcheck = backcheck or None
    if backcheck is not None and backcheck not in BACKCHECKS:
        raise ReviewError("qc_backcheck_invalid", value=backcheck)
    note = (note or "").strip() or None
    if not clean and backcheck is None:
        raise ReviewError("qc_review_empty")
    if backcheck in ("denied", "discrepancy") and not note:
        raise ReviewError("qc_backcheck_needs_note")
    score = round(20 * sum(clean.values()) / len(clean), 1) if clean else None
    row = QCReview(interview_id=interview_id, reviewer_id=user_id, scores=clean, score=score, backcheck=backcheck,
                   note=note[:1000] if note else None, at=now)
    session.add(row)
    session.flush()
    audit.record(session, user_id=user_id, action="qc.review", entity="interview", entity_id=interview_id,
                 after={"scores": clean, "score": score, "backcheck": backcheck}, note=note)
    return row


@dataclass(frozen=True)
class Review:
    interview_id: int
    reviewer: str
    scores: dict
    score: float | None
    backcheck: str | None
    note: str
    at: datetime


def reviews_of(session: Session, interview_ids: list[int]) -> dict[int, list[Review]]:
    out: dict[int, list[Review]] = {}
    if not interview_ids:
        return out
    for r, who in session.execute(select(QCReview, User.display_name).join(User, User.id == QCReview.reviewer_id)
                                  .where(QCReview.interview_id.in_(interview_ids))
                                  .order_by(QCReview.at, QCReview.id)):
        out.setdefault(r.interview_id, []).append(Review(r.interview_id, who, dict(r.scores or {}), r.score,
                                                         r.backcheck, r.note or "", r.at))
    return out
