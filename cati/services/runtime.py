"""One typed runtime per stored study version: everything the services compile from ``Study.definition``.

The study file is validated once into the typed model (:mod:`cati.study.schema`); from it come the compiled
calling rules, the questionnaire engine and the scoring spec. Every service asks :func:`runtime_for` instead of
reading ``study.definition`` as a raw dict with defaults of its own, and there is one cache, under one key:
(study id, version, created at). The version names the definition (``models.study`` bumps it whenever a stored
study's definition is replaced), and the creation time tells apart studies of different databases that share
an id in one process (a demo re-run, test databases).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from cati.models import Study

from .calling import CallRules

if TYPE_CHECKING:
    from cati.study.engine import Questionnaire
    from cati.study.schema import FieldworkPlan, QCConfig, QuotaConfig
    from cati.study.schema import Study as StudySpec
    from scoring.spec import ScoringSpec


@dataclass(frozen=True, eq=False)
class StudyRuntime:
    """What a stored study version compiles to. ``spec`` is the validated study file; the rest derive from it
    on first use."""

    key: tuple
    code: str
    spec: StudySpec

    @cached_property
    def rules(self) -> CallRules:
        """The calling rules (windows, retries, caps, best time to call) as the scheduler applies them."""
        return CallRules.from_definition(self.spec.raw)

    @cached_property
    def questionnaire(self) -> Questionnaire:
        """The questionnaire engine (routing, piping, validation of answers)."""
        from cati.study.engine import Questionnaire

        return Questionnaire(self.spec)

    @cached_property
    def scoring(self) -> ScoringSpec:
        """The scoring spec (indicators, weights, item scores, bootstrap settings)."""
        from scoring.spec import ScoringSpec

        return ScoringSpec.from_study(self.spec.raw)

    @property
    def timezone(self) -> str:
        """Respondents' default time zone (``calling_rules.timezone_default``, or a web study's ``timezone``); a
        case's own zone wins."""
        return self.spec.zone_name

    @property
    def quota(self) -> QuotaConfig:
        """The study's quotas; a web study without any has no enterprise target (:data:`NO_QUOTA`)."""
        if self.spec.quota is not None:
            return self.spec.quota
        from cati.study.schema import NO_QUOTA

        return NO_QUOTA

    @property
    def fieldwork(self) -> FieldworkPlan:
        return self.spec.fieldwork

    @property
    def qc(self) -> QCConfig:
        return self.spec.qc


_runtimes: dict[tuple, StudyRuntime] = {}
_lock = threading.Lock()


def runtime_for(study: Study) -> StudyRuntime:
    """The runtime of ``study`` at its current version (compiled once per process and version).

    Raises the loader's ``StudyError`` when the stored definition does not validate.
    """
    key = (study.id, study.version, study.created_at)
    found = _runtimes.get(key) if study.id is not None else None
    if found is not None:
        return found
    from cati.study.loader import validate_study_mapping

    built = StudyRuntime(key=key, code=study.code,
                         spec=validate_study_mapping(study.definition, source=f"study {study.code}"))
    if study.id is not None:
        with _lock:
            found = _runtimes.setdefault(key, built)
        return found
    return built
