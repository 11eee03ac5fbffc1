"""Answer checking: extraction and equivalence of math answers."""

from offload_gym.scoring.equivalence import Verdict, compare, is_equivalent, normalize
from offload_gym.scoring.extract import extract_answer, last_boxed

__all__ = ["Verdict", "compare", "extract_answer", "is_equivalent", "last_boxed", "normalize"]
