"""From the database to every product of a study: scores, the industry, enterprise and fieldwork reports, and
the data exports — one path for ``cati report``, ``cati export``, ``cati demo`` and the analyst's web jobs.

Two steps, so that a caller can let go of the database in between (the demo forks a second process for the
data exports and must not hand it an open SQLite connection):

* :func:`read_study_data` reads every frame the products need, once, through :mod:`cati.services.frames`;
* :func:`build_products` scores and writes the products from those frames, with no database.

:func:`build_all` does both. A product that fails is recorded with its reason and does not stop the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from cati.models import Study

from . import frames
from .runtime import runtime_for

#: Every product, in the order they are built and listed.
PRODUCTS = ("scores", "industry", "enterprise", "fieldwork", "exports", "paradata")
#: Formats per product when the caller does not choose.
DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    "industry": ("html", "pdf", "xlsx"), "enterprise": ("html", "pdf", "xlsx"), "fieldwork": ("html", "pdf", "xlsx"),
    "exports": ("csv", "xlsx", "sav"), "paradata": ("csv", "xlsx"),
}
#: Products that need the completes scored first.
SCORED = frozenset({"scores", "industry", "enterprise"})
#: Where each product goes under the output folder ("" = the folder itself).
LAYOUT = {"scores": "scores", "industry": "", "enterprise": "enterprises", "fieldwork": "", "exports": "data",
          "paradata": "data"}


@dataclass
class StudyData:
    """Everything the products read from the database, as frames (no session needed after this)."""

    study_id: int
    code: str
    definition: dict[str, Any]
    responses: pd.DataFrame
    cases: pd.DataFrame
    attempts: pd.DataFrame
    dispositions: pd.DataFrame
    quotas: pd.DataFrame | None
    timezone: str
    quota_per_enterprise: int


@dataclass
class Built:
    """What :func:`build_products` wrote: per product ``{"files", "seconds", "paths"}``, the failures with their
    reason, the overall scores and the study's AAPOR rates (RR1 … CON1 and e)."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    overall: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)

    def paths(self) -> list[Path]:
        return [p for info in self.products.values() for p in info["paths"]]


def read_study_data(session: Session, study: Study, *, complete_only: bool = True,
                    include_phone: bool = False, responses: pd.DataFrame | None = None) -> StudyData:
    """Read the frames of ``study``: completes (or every interview), cases, call attempts, the AAPOR
    dispositions and the quota board. Phones stay masked unless ``include_phone`` (the caller checked the
    user may see them). ``responses`` given (a release's frozen completes) is used instead of reading them."""
    from .supervision import quota_board

    definition = dict(study.definition or {})
    runtime = runtime_for(study)
    tz = runtime.timezone
    board = quota_board(session, study, datetime.now(UTC))
    quotas = pd.DataFrame([{"enterprise_id": r.external_id, "enterprise_name": r.name, "industry": r.industry,
                            "target": r.quota_target, "completes": r.completes, "in_progress": r.in_progress}
                           for r in board]) if board else None
    return StudyData(
        study_id=study.id, code=study.code, definition=definition,
        responses=responses if responses is not None else frames.responses_frame(
            session, study.id, complete_only=complete_only, include_phone=include_phone),
        cases=frames.cases_frame(session, study.id),
        attempts=frames.attempts_frame(session, study.id, mask_phones=not include_phone),
        dispositions=frames.dispositions_frame(session, study, tz=tz),
        quotas=quotas, timezone=tz, quota_per_enterprise=runtime.quota.per_enterprise)


def _formats(product: str, formats: Mapping[str, Sequence[str]] | Sequence[str] | None) -> tuple[str, ...]:
    if formats is None:
        return DEFAULT_FORMATS[product]
    if isinstance(formats, Mapping):
        return tuple(formats.get(product, DEFAULT_FORMATS[product]))
    allowed = {"scores": None, "exports": {"csv", "xlsx", "sav"}, "paradata": {"csv", "xlsx"}}.get(
        product, {"html", "pdf", "xlsx"})
    chosen = tuple(f for f in formats if allowed is None or f in allowed)
    return chosen or DEFAULT_FORMATS[product]


def _timed(fn: Callable[[], Any]) -> tuple[dict[str, Any] | None, str | None]:
    start = time.perf_counter()
    try:
        got = fn()
    except Exception as exc:  # noqa: BLE001 - one broken product must not lose the others
        return None, f"{type(exc).__name__}: {exc}"
    paths = [Path(p) for p in (got.values() if isinstance(got, dict) else got)]
    return {"files": len(paths), "seconds": round(time.perf_counter() - start, 1), "paths": paths}, None


def _data_exports(responses: pd.DataFrame, attempts: pd.DataFrame, definition: Mapping, out: Path,
                  response_formats: tuple[str, ...], paradata_formats: tuple[str, ...], lang: str,
                  include_phone: bool, wanted: tuple[str, ...]) -> list[tuple[str, dict | None, str | None]]:
    """The data files: they need no scores, so :func:`build_products` may write them in a second process."""
    from reports import exports

    done = []
    if "exports" in wanted:
        done.append(("exports", *_timed(lambda: exports.export_responses(
            responses, definition, out, formats=response_formats, lang=lang, include_phone=include_phone))))
    if "paradata" in wanted:
        done.append(("paradata", *_timed(lambda: exports.export_paradata(
            attempts, out, formats=paradata_formats, include_phone=include_phone))))
    return done


def build_products(data: StudyData, out_dir: str | Path, *, products: Iterable[str] = PRODUCTS,
                   formats: Mapping[str, Sequence[str]] | Sequence[str] | None = None, lang: str = "zh-CN",
                   enterprise_ids: Sequence[Any] | None = None, previous: Any = None, n_boot: int | None = None,
                   seed: int = 1, workers: int = 2, include_phone: bool = False,
                   exports_in_second_process: bool = False,
                   layout: Mapping[str, str] | None = None,
                   progress: Callable[[str, int], None] | None = None,
                   on_product: Callable[[str, dict | None, str | None], None] | None = None,
                   result: Any = None, as_of: datetime | None = None) -> Built:
    """Score the completes and write the chosen products under ``out_dir``.

    Layout: ``scores/`` (the scoring tables), the industry and fieldwork reports at the top,
    ``enterprises/`` (one report per enterprise), ``data/`` (responses and the call history); ``layout`` changes a product's
    sub-folder ("" = ``out_dir`` itself).
    ``formats`` is one list for every product (each keeps the formats it supports) or a mapping product →
    formats. ``progress(product, n)`` is called as enterprise reports are written (n per step);
    ``on_product(name, info, error)`` once per finished or failed product. ``exports_in_second_process`` writes the data files in a forked process while
    this one scores, so both cores work (the caller must have closed its database connections).
    ``result`` is the completes already scored (a release's stored :class:`scoring.ScoreResult`: not scored
    again); ``as_of`` is the moment every file says it was written (a release's date), so the products of one
    release are the same bytes whenever and by whomever they are written.
    """
    from reports.render import fixed_time

    with fixed_time(as_of):
        return _build_products(data, out_dir, products=products, formats=formats, lang=lang,
                               enterprise_ids=enterprise_ids, previous=previous, n_boot=n_boot, seed=seed,
                               workers=workers, include_phone=include_phone,
                               exports_in_second_process=exports_in_second_process, layout=layout,
                               progress=progress, on_product=on_product, result=result)


def with_provinces(result: Any, responses: pd.DataFrame) -> Any:
    """``result`` with each enterprise's province (from the completes) beside its scores, so the enterprise
    reports and pages can compare with 本省份."""
    import dataclasses

    if "province" in result.enterprises.columns or "province" not in responses.columns or not len(responses):
        return result
    prov = responses.dropna(subset=["province"]).groupby(responses["enterprise_id"].astype(str))["province"].first()
    if not len(prov):
        return result
    ent = result.enterprises.copy()
    ent["province"] = ent["enterprise_id"].astype(str).map(prov)
    return dataclasses.replace(result, enterprises=ent)


def _build_products(data: StudyData, out_dir: str | Path, *, products: Iterable[str], formats, lang: str,
                    enterprise_ids, previous, n_boot, seed, workers, include_phone, exports_in_second_process,
                    layout, progress, on_product, result) -> Built:
    from scoring import ScoringSpec, is_index_study, score_study

    wanted = tuple(p for p in PRODUCTS if p in set(products))
    unknown = set(products) - set(PRODUCTS)
    if unknown:
        raise ValueError(f"unknown product(s) {', '.join(sorted(unknown))}; choose from {', '.join(PRODUCTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    where = {**LAYOUT, **(layout or {})}

    def folder(product: str) -> Path:
        return out / where[product] if where[product] else out

    built = Built()
    tick = progress or (lambda _product, _n: None)
    announce = on_product or (lambda _name, _info, _error: None)

    def record(name: str, info: dict | None, error: str | None) -> None:
        if info is not None:
            built.products[name] = info
        else:
            built.errors[name] = error or "failed"
        announce(name, info, error)

    study_rates = frames.rates(data.dispositions)
    if len(study_rates):
        row = study_rates.iloc[0]
        built.rates = {k: round(float(row[k]), 4) for k in ("RR1", "RR3", "COOP1", "REF1", "CON1", "e") if k in row}
    data_products = tuple(p for p in wanted if p in ("exports", "paradata"))
    data_args = (data.responses, data.attempts, data.definition, folder("exports"), _formats("exports", formats),
                 _formats("paradata", formats), lang, include_phone, data_products)
    side = None
    if data_products and exports_in_second_process:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_all_start_methods, get_context

        ctx = get_context("fork") if "fork" in get_all_start_methods() else None
        side = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        data_future = side.submit(_data_exports, *data_args)
    try:
        if is_index_study(data.definition):
            result = None  # an index study's scored products are its own (reports.happiness)
            _index_products(data, wanted, folder, formats, lang, enterprise_ids, previous, n_boot, seed, workers,
                            tick, record, built)
        elif result is not None and SCORED & set(wanted):
            overall = result.overall if isinstance(result.overall, dict) else {}
            built.overall = {k: (round(float(v), 2) if isinstance(v, int | float) else v)
                             for k, v in overall.items()}
        elif SCORED & set(wanted):
            if len(data.responses) == 0:
                for name in (p for p in wanted if p in SCORED):
                    record(name, None, f"study {data.code}: no complete interviews yet")
            else:
                spec = ScoringSpec.from_study(data.definition)
                result = score_study(data.responses, spec, n_boot=n_boot, seed=seed)
                overall = result.overall if isinstance(result.overall, dict) else {}
                built.overall = {k: (round(float(v), 2) if isinstance(v, int | float) else v)
                                 for k, v in overall.items()}
        if result is not None:
            from reports.enterprise import build_enterprise_reports
            from reports.industry import build_industry_report

            if "scores" in wanted:
                record("scores", *_timed(lambda: result.write(folder("scores"))))
            if "industry" in wanted:
                by_industry = frames.rates(data.dispositions, by="industry")
                record("industry", *_timed(lambda: build_industry_report(
                    result, data.definition, rates=by_industry, lang=lang, out_dir=folder("industry"),
                    formats=_formats("industry", formats))))
            if "enterprise" in wanted:
                verbatims = data.responses[["enterprise_id", "OPEN1"]] if "OPEN1" in data.responses else None
                record("enterprise", *_timed(lambda: build_enterprise_reports(
                    with_provinces(result, data.responses), data.definition, enterprise_ids=enterprise_ids, previous=previous,
                    verbatims=verbatims, lang=lang, out_dir=folder("enterprise"),
                    formats=_formats("enterprise", formats), workers=workers,
                    progress=lambda n: tick("enterprise", n))))
        if "fieldwork" in wanted:
            from reports.fieldwork import build_fieldwork_report

            target = data.quota_per_enterprise
            record("fieldwork", *_timed(lambda: build_fieldwork_report(
                data.cases, data.attempts, study_rates, data.quotas, lang=lang, out_dir=folder("fieldwork"),
                formats=_formats("fieldwork", formats), tz=data.timezone, target=target)))
        if data_products:
            if side is not None:
                try:
                    side_results = data_future.result()
                except Exception as exc:  # noqa: BLE001 - the second process died: its products failed
                    side_results = [(name, None, f"{type(exc).__name__}: {exc}") for name in data_products]
            else:
                side_results = _data_exports(*data_args)
            for got in side_results:
                record(*got)
    finally:
        if side is not None:
            side.shutdown()
    built.products = {p: built.products[p] for p in PRODUCTS if p in built.products}
    return built


def read_release_data(session: Session, study: Study, release: Any, *,
                      include_phone: bool = False) -> tuple[StudyData, Any]:
    """The frames of a release: its frozen completes (with today's full phone numbers joined on when
    ``include_phone``: the caller checked the user may see them) and its stored scores. The call history and the
    dispositions are the study's now (the fieldwork report is not part of a release)."""
    from .releases import stored_result

    result, responses = stored_result(session, release)
    if include_phone:
        phones = frames.responses_frame(session, study.id, include_phone=True)[["respondent_id", "phone"]]
        responses = responses.copy()
        at = list(responses.columns).index("ended_at") + 1 if "ended_at" in responses.columns else len(
            responses.columns)
        responses.insert(at, "phone", responses["respondent_id"].map(
            dict(zip(phones["respondent_id"], phones["phone"], strict=True))))
    data = read_study_data(session, study, include_phone=include_phone, responses=responses)
    return data, result


def _index_products(data: StudyData, wanted: tuple[str, ...], folder: Callable[[str], Path],
                    formats: Mapping[str, Sequence[str]] | Sequence[str] | None, lang: str,
                    enterprise_ids: Sequence[Any] | None, previous: Any, n_boot: int | None, seed: int,
                    workers: int, tick: Callable[[str, int], None], record: Callable[[str, dict | None, str | None], None],
                    built: Built) -> None:
    """The scored products of an index study (``scoring.kind: index``, the staff happiness index): its scoring
    tables, the industry report and one report per enterprise (:mod:`reports.happiness`). ``previous`` is the
    previous wave's responses frame (本企业去年); anything else is ignored (the reports say there is none)."""
    from scoring import IndexSpec, score_index_study

    scored = [p for p in wanted if p in SCORED]
    if not scored:
        return
    if len(data.responses) == 0:
        for name in scored:
            record(name, None, f"study {data.code}: no complete responses yet")
        return
    spec = IndexSpec.from_study(data.definition)
    result = score_index_study(data.responses, spec, n_boot=n_boot, seed=seed)
    built.overall = {k: (round(float(v), 2) if isinstance(v, int | float) and v == v else v)
                     for k, v in result.overall.items()}
    from reports.happiness import build_happiness_enterprise_reports, build_happiness_industry_report

    if "scores" in wanted:
        record("scores", *_timed(lambda: result.write(folder("scores"))))
    if "industry" in wanted:
        record("industry", *_timed(lambda: build_happiness_industry_report(
            result, data.responses, data.definition, lang=lang, out_dir=folder("industry"),
            formats=_formats("industry", formats))))
    if "enterprise" in wanted:
        last = previous if isinstance(previous, pd.DataFrame) else None
        record("enterprise", *_timed(lambda: build_happiness_enterprise_reports(
            result, data.responses, data.definition, enterprise_ids=enterprise_ids, previous=last, lang=lang,
            out_dir=folder("enterprise"), formats=_formats("enterprise", formats),
            progress=lambda n: tick("enterprise", n), workers=workers)))


def build_all(session: Session, study: Study, out_dir: str | Path, formats: Mapping[str, Sequence[str]] |
              Sequence[str] | None = None, *, release: Any = None, **options: Any) -> Built:
    """Read ``study`` and write its products (see :func:`build_products` for the options). With ``release``
    (an :class:`cati.models.AnalysisRelease`), the products are the release's: its frozen completes and
    scores, its bootstrap parameters, and its date as the files' date."""
    if release is None:
        data = read_study_data(session, study, include_phone=options.get("include_phone", False))
        return build_products(data, out_dir, formats=formats, **options)
    from .releases import release_previous

    data, result = read_release_data(session, study, release, include_phone=options.get("include_phone", False))
    options.update(result=result, as_of=release.created_at, n_boot=release.n_boot, seed=release.seed)
    if options.get("previous") is None:
        options["previous"] = release_previous(release)
    return build_products(data, out_dir, formats=formats, **options)
