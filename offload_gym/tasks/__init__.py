"""Tasks: the `Task` record, procedural families, dataset loaders and task streams."""

# Importing the family modules registers them.
from offload_gym.tasks import (  # noqa: F401
    arithmetic,
    code_algorithms,
    code_arithmetic,
    code_lists,
    code_strings,
    derivatives,
    fractions,
    linear_equations,
    polynomials,
    word_problems,
)
from offload_gym.tasks.base import DOMAINS, Draft, GeneratorConfig, Task, TaskGenerator
from offload_gym.tasks.loaders import (
    DatasetFormatError,
    load_gsm8k,
    load_humaneval,
    load_jsonl,
    load_math,
    load_mbpp,
)
from offload_gym.tasks.registry import (
    get_generator_class,
    list_generators,
    make_generator,
    register_generator,
)
from offload_gym.tasks.stream import (
    TaskGroup,
    TaskStream,
    code_stream,
    math_code_stream,
    math_stream,
)

__all__ = [
    "DOMAINS",
    "DatasetFormatError",
    "Draft",
    "GeneratorConfig",
    "Task",
    "TaskGenerator",
    "TaskGroup",
    "TaskStream",
    "code_stream",
    "get_generator_class",
    "list_generators",
    "load_gsm8k",
    "load_humaneval",
    "load_jsonl",
    "load_math",
    "load_mbpp",
    "make_generator",
    "math_code_stream",
    "math_stream",
    "register_generator",
]
