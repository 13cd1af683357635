"""Scored results for the analyst: *live* (the study's completes now) or a frozen *release*.

A release is a named, dated snapshot of the completes and of what scoring made of them, with its parameters
(indicator weights, bootstrap seed and replicate count). Pages, reports and exports of one release all read the
same stored bytes, so each of its numbers is the same number everywhere; ``cati report … --release NAME`` and the
web's report jobs write the same files from it (:func:`study_data_for`, :func:`cati.services.publishing.build_all`).

Scoring 360 enterprises with 2,000 bootstrap replicates takes seconds, so results are cached in this process:
live ones per (study, version, completes, last complete, last answer change), releases per id (they never
change). Only :func:`create_release` writes (it flushes; the caller commits).
"""

from __future__ import annotations

import pickle
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cati.i18n import KeyedError
from cati.models import AnalysisRelease, AnswerRevision, Interview, InterviewStatus, QCStatus, Study

from . import audit, frames

#: Seed of live scores: the same default as ``cati score`` and ``cati report``.
LIVE_SEED = 0
MAX_REPLICATES = 10_000
_CACHE_SIZE = 8


@dataclass(frozen=True)
class PreviousWave:
    """The previous wave's enterprise scores (``enterprise_id``, the indicator codes, ``composite``, items):
    what the enterprise pages and reports show as 本企业去年. Reports read ``.enterprises`` like a ScoreResult's."""

    enterprises: pd.DataFrame
    label: str


@dataclass(frozen=True)
class Scored:
    """A scored study as the analyst's pages show it."""

    result: Any  # scoring.ScoreResult
    responses: pd.DataFrame  # the completes it was scored from (phones masked)
    study_id: int
    release_id: int | None
    name: str | None  # the release's name; None = live
    created_at: datetime | None
    n_boot: int
    seed: int
    key: tuple
    previous: PreviousWave | None = None

    @property
    def is_live(self) -> bool:
        return self.release_id is None


class _Cache:
    """A small LRU of computed results with one lock per key, so concurrent requests compute a result once."""

    def __init__(self, size: int = _CACHE_SIZE):
        self.size = size
        self.items: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.key_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self.lock:
                if key in self.items:
                    return self.items[key]
            value = compute()
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
                self.key_locks.pop(key, None)
            return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_results = _Cache()
#: Derived views (e.g. the enterprise comparison frames) keyed by a result's key and a name.
derived = _Cache(size=32)


def clear_caches() -> None:
    _results.clear()
    derived.clear()


def _pack(obj: Any) -> bytes:
    return zlib.compress(pickle.dumps(obj, protocol=5), 3)


def _unpack(data: bytes) -> Any:
    # Written by _pack only (this module), never from an upload.
    return pickle.loads(zlib.decompress(data))  # noqa: S301


def live_key(session: Session, study: Study) -> tuple:
    """What live scores depend on: the study's version, its valid completes and the last answer change."""
    n, last = session.execute(
        select(func.count(Interview.id), func.max(Interview.id)).where(
            Interview.study_id == study.id, Interview.status == InterviewStatus.COMPLETE,
            Interview.qc_status != QCStatus.REJECTED)).one()
    last_change = session.scalar(select(func.max(AnswerRevision.id)))
    qc = session.scalar(select(func.count(Interview.id)).where(Interview.study_id == study.id,
                                                               Interview.qc_status == QCStatus.REJECTED))
    return ("live", study.id, study.version, int(n or 0), last, last_change, qc)


def _score(responses: pd.DataFrame, definition: dict, n_boot: int | None, seed: int):
    from scoring import ScoringSpec, score_study

    spec = ScoringSpec.from_study(definition)
    return score_study(responses, spec, n_boot=n_boot, seed=seed)


def live(session: Session, study: Study) -> Scored | None:
    """The study's completes scored now (None while it has none), computed once per :func:`live_key`."""
    key = live_key(session, study)
    if key[3] == 0:
        return None

    def compute() -> Scored:
        from .publishing import with_provinces

        responses = frames.responses_frame(session, study.id)
        result = _score(responses, dict(study.definition or {}), None, LIVE_SEED)
        return Scored(result=with_provinces(result, responses), responses=responses, study_id=study.id,
                      release_id=None, name=None, created_at=None, n_boot=int(result.method["n_boot"]),
                      seed=LIVE_SEED, key=key)

    return _results.get(key, compute)


def releases(session: Session, study: Study) -> list[AnalysisRelease]:
    """The study's releases, newest first (their snapshots are not loaded)."""
    from sqlalchemy.orm import defer

    return list(session.scalars(select(AnalysisRelease).where(AnalysisRelease.study_id == study.id)
                                .options(defer(AnalysisRelease.responses), defer(AnalysisRelease.scored))
                                .order_by(AnalysisRelease.created_at.desc(), AnalysisRelease.id.desc())))


def every_release(session: Session) -> list[tuple[int, str]]:
    """(id, label) of every release in the database, of any study: the choices for a previous wave."""
    rows = session.execute(select(AnalysisRelease.id, AnalysisRelease.name, AnalysisRelease.created_at, Study.code)
                           .join(Study, Study.id == AnalysisRelease.study_id)
                           .order_by(AnalysisRelease.created_at.desc())).all()
    return [(r.id, f"{r.name} · {r.code} · {r.created_at:%Y-%m-%d}") for r in rows]


def release_row(session: Session, study: Study, release_id: int) -> AnalysisRelease:
    rel = session.get(AnalysisRelease, release_id)
    if rel is None or rel.study_id != study.id:
        raise KeyedError("an_release_unknown", id=release_id)
    return rel


def from_release(session: Session, study: Study, release_id: int) -> Scored:
    """The frozen scores of a release (read and unpacked once per process)."""
    key = ("release", release_id)

    def compute() -> Scored:
        from .publishing import with_provinces

        rel = release_row(session, study, release_id)
        responses = _unpack(rel.responses)
        result = _unpack(rel.scored)
        return Scored(result=with_provinces(result, responses), responses=responses, study_id=rel.study_id,
                      release_id=rel.id, name=rel.name, created_at=rel.created_at, n_boot=rel.n_boot,
                      seed=rel.seed, key=key, previous=release_previous(rel))

    got = _results.get(key, compute)
    if got.study_id != study.id:
        raise KeyedError("an_release_unknown", id=release_id)
    return got


def release_previous(release: AnalysisRelease) -> PreviousWave | None:
    """The previous wave stored with a release (None without one)."""
    if release.previous is None:
        return None
    return PreviousWave(enterprises=_unpack(release.previous), label=release.previous_label or "")


_PREVIOUS_KEEP = ("enterprise_id", "enterprise_name", "industry", "n", "composite")


def _previous_frame(ent: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    cols = [c for c in ent.columns if c in _PREVIOUS_KEEP or c in codes]
    out = ent[cols].copy()
    out["enterprise_id"] = out["enterprise_id"].astype(str)
    return out.reset_index(drop=True)


def previous_from_release(session: Session, study: Study, release_id: int) -> PreviousWave:
    """Another release as the previous wave: of this study or of another one in the database (last year's)."""
    other = session.get(AnalysisRelease, release_id)
    if other is None:
        raise KeyedError("an_release_unknown", id=release_id)
    result = _unpack(other.scored)
    codes = [*result.spec.indicator_codes, *result.spec.item_codes]
    source = session.get(Study, other.study_id)
    label = f"{other.name} ({source.code if source else other.study_id}, {other.created_at:%Y-%m-%d})"
    return PreviousWave(enterprises=_previous_frame(result.enterprises, codes), label=label[:200])


def previous_from_csv(data: bytes, filename: str, study: Study) -> PreviousWave:
    """Last year's ``enterprise_scores.csv`` (``cati score --out``; UTF-8 with or without BOM) as the previous wave.
    Needs ``enterprise_id`` and ``composite``; the study's indicator and item columns are taken where present."""
    import io

    from scoring import ScoringSpec

    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"enterprise_id": str}, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise KeyedError("an_previous_bad_file", name=filename, reason=str(exc).splitlines()[0][:200]) from None
    missing = [c for c in ("enterprise_id", "composite") if c not in frame.columns]
    if missing:
        raise KeyedError("an_previous_bad_file", name=filename, reason="missing column " + ", ".join(missing))
    spec = ScoringSpec.from_study(dict(study.definition or {}))
    codes = [*spec.indicator_codes, *spec.item_codes]
    for c in ["composite", *codes]:
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame = frame.dropna(subset=["enterprise_id"])
    if frame["enterprise_id"].duplicated().any():
        dup = frame.loc[frame["enterprise_id"].duplicated(), "enterprise_id"].iloc[0]
        raise KeyedError("an_previous_bad_file", name=filename, reason=f"enterprise_id {dup} appears twice")
    return PreviousWave(enterprises=_previous_frame(frame, codes), label=filename[:200])


def stored_result(session: Session, release: AnalysisRelease) -> tuple[Any, pd.DataFrame]:
    """(ScoreResult, responses) exactly as stored: what reports and exports of the release are made from."""
    return _unpack(release.scored), _unpack(release.responses)


def _check_name(session: Session, study: Study, name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise KeyedError("an_release_name_needed")
    if session.scalar(select(AnalysisRelease.id).where(AnalysisRelease.study_id == study.id,
                                                       AnalysisRelease.name == name)) is not None:
        raise KeyedError("an_release_name_taken", name=name)
    return name


@dataclass(frozen=True)
class Frozen:
    """A release scored but not yet stored (:func:`score_release` → :func:`store_release`)."""

    name: str
    moment: datetime
    responses: pd.DataFrame
    result: Any
    n_boot: int
    seed: int
    weights: dict
    previous: PreviousWave | None = None


def score_release(session: Session, study: Study, *, name: str, n_boot: int | None = None, seed: int = LIVE_SEED,
                  now: datetime | None = None, previous: PreviousWave | None = None) -> Frozen:
    """Read and score the completes for release ``name`` (only reads: a caller on SQLite can do this outside
    the write lock, seconds at 360 enterprises, and then store it quickly)."""
    from datetime import UTC

    from scoring import ScoringSpec

    name = _check_name(session, study, name)
    definition = dict(study.definition or {})
    spec = ScoringSpec.from_study(definition)
    n_boot = spec.bootstrap_replicates if n_boot is None else int(n_boot)
    if not 0 <= n_boot <= MAX_REPLICATES:
        raise KeyedError("an_release_replicates", max=MAX_REPLICATES)
    responses = frames.responses_frame(session, study.id)
    if len(responses) == 0:
        raise KeyedError("an_release_no_completes")
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    result = _score(responses, definition, n_boot, int(seed))
    result.method["release"] = name
    result.method["release_date"] = moment.strftime("%Y-%m-%d %H:%M UTC")
    weights = {"indicators": dict(spec.indicator_weights),
               "industry_aggregation": result.method["industry_aggregation"]}
    if previous is not None:
        result.method["previous_wave"] = previous.label
    return Frozen(name=name, moment=moment, responses=responses, result=result, n_boot=n_boot, seed=int(seed),
                  weights=weights, previous=previous)


def store_release(session: Session, study: Study, frozen: Frozen, *, user_id: int | None = None) -> AnalysisRelease:
    """Store a scored release (flushes; the caller commits). The name is checked again (another analyst may
    have taken it meanwhile)."""
    _check_name(session, study, frozen.name)
    result = frozen.result
    overall = {k: (None if isinstance(v, float) and v != v else v) for k, v in result.overall.items()
               if isinstance(v, int | float | str)}
    rel = AnalysisRelease(
        study_id=study.id, name=frozen.name, created_at=frozen.moment, created_by_id=user_id,
        study_version=study.version, n_completes=len(frozen.responses),
        n_enterprises=int(result.method["n_enterprises"]), n_boot=frozen.n_boot, seed=frozen.seed,
        weights=frozen.weights, overall=overall, responses=_pack(frozen.responses), scored=_pack(result),
        previous_label=frozen.previous.label if frozen.previous else None,
        previous=_pack(frozen.previous.enterprises) if frozen.previous else None)
    session.add(rel)
    session.flush()
    audit.record(session, user_id=user_id, action="release.create", entity="release", entity_id=rel.id,
                 after={"name": frozen.name, "n_completes": rel.n_completes, "n_boot": frozen.n_boot,
                        "seed": frozen.seed})
    return rel


def create_release(session: Session, study: Study, *, name: str, n_boot: int | None = None, seed: int = LIVE_SEED,
                   user_id: int | None = None, now: datetime | None = None,
                   previous: PreviousWave | None = None) -> AnalysisRelease:
    """Freeze the study's completes and their scores as release ``name`` (flushes; the caller commits)."""
    frozen = score_release(session, study, name=name, n_boot=n_boot, seed=seed, now=now, previous=previous)
    return store_release(session, study, frozen, user_id=user_id)
