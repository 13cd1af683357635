"""Study definitions: schema (pydantic models), loader (validation with file/path messages), conditions (the
skip-rule language) and the questionnaire engine (routing, validation, rendering)."""

from cati.study.conditions import Condition, ConditionError, compile_condition
from cati.study.engine import AnswerError, Questionnaire, Step
from cati.study.loader import DEFAULT_STUDY_PATH, Problem, StudyError, load_study, validate_study_mapping
from cati.study.schema import Question, Scale, Study

__all__ = [
    "DEFAULT_STUDY_PATH",
    "AnswerError",
    "Condition",
    "ConditionError",
    "Problem",
    "Question",
    "Questionnaire",
    "Scale",
    "Step",
    "Study",
    "StudyError",
    "compile_condition",
    "load_study",
    "validate_study_mapping",
]
