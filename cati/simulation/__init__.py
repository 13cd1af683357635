"""Fieldwork simulation: virtual interviewers and respondents driving the real scheduler and database."""

from .engine import Simulator, ensure_interviewers, setup_study, simulate
from .report import FieldworkReport, comparison_table
from .strategies import STRATEGIES, make_strategy
from .world import DEFAULT_WORLD_FILE, World, WorldError

__all__ = ["DEFAULT_WORLD_FILE", "FieldworkReport", "STRATEGIES", "Simulator", "World", "WorldError",
           "comparison_table", "ensure_interviewers", "make_strategy", "setup_study",
           "simulate"]
