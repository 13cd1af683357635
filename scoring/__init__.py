"""Scoring of satisfaction studies (design.md §3): pure functions on pandas DataFrames.

Imports nothing of the application (no Flask, no SQLAlchemy, no ``cati``): numpy, pandas, scipy, statsmodels only.
"""

from .contract import complete_mask, read_responses_csv, validate_responses
from .drivers import driver_table, johnson_relative_weights, noise_corrected_tau, relative_weights
from .rates import aapor_symbol, response_rates
from .scores import enterprise_scores, industry_scores, overall_scores, recode_items, respondent_scores
from .spec import Indicator, ScoringSpec, default_spec
from .study import ScoreResult, score_study
from .synthetic import make_synthetic_responses

__all__ = [
    "Indicator",
    "ScoreResult",
    "ScoringSpec",
    "aapor_symbol",
    "complete_mask",
    "default_spec",
    "driver_table",
    "enterprise_scores",
    "industry_scores",
    "johnson_relative_weights",
    "make_synthetic_responses",
    "noise_corrected_tau",
    "overall_scores",
    "read_responses_csv",
    "recode_items",
    "relative_weights",
    "respondent_scores",
    "response_rates",
    "score_study",
    "validate_responses",
]
