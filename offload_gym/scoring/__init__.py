"""Answer checking: extraction and equivalence of math answers, grading of responses."""

from offload_gym.scoring.equivalence import Verdict, compare, is_equivalent, normalize
from offload_gym.scoring.extract import extract_answer, last_boxed
from offload_gym.scoring.grade import Grade, GradeMemo, grade_response

__all__ = [
    "Grade",
    "GradeMemo",
    "Verdict",
    "compare",
    "extract_answer",
    "grade_response",
    "is_equivalent",
    "last_boxed",
    "normalize",
]
