"""Scoring of satisfaction studies (docs/domain.md §3): pure functions on pandas DataFrames.

Imports nothing of the application (no Flask, no SQLAlchemy, no ``cati``): numpy, pandas, scipy, statsmodels only.

Main entry points::

    spec = ScoringSpec.from_yaml("config/studies/csat_contact_center.yaml")   # or .from_study(raw_mapping)
    frame = read_responses_csv("responses.csv", spec)      # file contract; errors name line and column
    result = score_study(frame, spec, n_boot=2000, seed=0)  # -> ScoreResult
    result.enterprises / .industries / .overall / .drivers / .respondents / .method
    result.write("out/")   # enterprise_scores.csv, industry_scores.csv, overall.json, drivers.csv, ...
    response_rates(dispositions, by="enterprise_id")        # AAPOR RR1–6, COOP1–4, REF1–3, CON1–3, e
    make_synthetic_responses(360, 15, 7385, seed=0)         # data shaped like the reference study
    score_audit(judgements, categories)                     # audit checklists (CCSO): category and overall result

Index studies (``scoring.kind: index``, the staff happiness index) are scored by :mod:`scoring.happiness`::

    spec = IndexSpec.from_yaml("config/studies/happiness_index.yaml")
    result = score_index_study(frame, spec, n_boot=1000)   # index, sections, breakdowns, drivers, multi shares

Scores are unrounded everywhere; round only for display (two decimals, docs/domain.md §3.8). ``tier`` values are the
machine strings ``above`` / ``not_different`` / ``below``.
"""

from .audit import AuditResult, score_audit
from .contract import complete_mask, read_responses_csv, validate_responses
from .drivers import driver_table, johnson_relative_weights, noise_corrected_tau, relative_weights
from .happiness import IndexResult, IndexSpec, is_index_study, score_index_study
from .rates import aapor_symbol, response_rates
from .scores import enterprise_scores, industry_scores, overall_scores, recode_items, respondent_scores
from .spec import Indicator, ScoringSpec, default_spec
from .study import ScoreResult, score_study
from .synthetic import make_happiness_responses, make_synthetic_responses

__all__ = [
    "AuditResult",
    "IndexResult",
    "IndexSpec",
    "Indicator",
    "ScoreResult",
    "ScoringSpec",
    "aapor_symbol",
    "complete_mask",
    "default_spec",
    "driver_table",
    "enterprise_scores",
    "industry_scores",
    "is_index_study",
    "johnson_relative_weights",
    "make_happiness_responses",
    "make_synthetic_responses",
    "noise_corrected_tau",
    "overall_scores",
    "read_responses_csv",
    "recode_items",
    "relative_weights",
    "respondent_scores",
    "response_rates",
    "score_audit",
    "score_index_study",
    "score_study",
    "validate_responses",
]
