"""Loops, conditionals and small classic algorithms, harder with difficulty.

1: digit sums, factorials, counting multiples; 2: gcd, Fibonacci, primality; 3: Collatz steps,
FizzBuzz words, binary strings; 4: longest increasing run, maximum subarray sum, binary search;
5: stair-climbing counts, longest common prefix, longest common subsequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from offload_gym.tasks._code import build_code_task
from offload_gym.tasks.base import Draft, Draws, GeneratorConfig, TaskGenerator
from offload_gym.tasks.registry import register_generator


class _Problem(NamedTuple):
    name: str
    params: list[tuple[str, str]]
    returns: str
    description: str
    body: str
    draw: Callable[[Draws], tuple[Any, ...]]


def _int(lo: int, hi: int) -> Callable[[Draws], tuple[Any, ...]]:
    return lambda r: (int(r.integers(lo, hi + 1)),)


def _ints(lo: int, hi: int, n_max: int) -> Callable[[Draws], tuple[Any, ...]]:
    return lambda r: ([int(v) for v in r.integers(lo, hi + 1, size=int(r.integers(0, n_max)))],)


def _sorted_and_target(r: Draws) -> tuple[Any, ...]:
    xs = sorted({int(v) for v in r.integers(-30, 31, size=int(r.integers(0, 12)))})
    target = (
        int(r.integers(-30, 31)) if r.random() < 0.5 or not xs else xs[int(r.integers(0, len(xs)))]
    )
    return (xs, target)


_ALPHABET = "abcde"


def _word(r: Draws, n: int) -> str:
    return "".join(_ALPHABET[int(r.integers(0, len(_ALPHABET)))] for _ in range(n))


_PROBLEMS: dict[int, list[_Problem]] = {
    1: [
        _Problem("digit_sum", [("n", "int")], "int",
                 "Return the sum of the decimal digits of the non-negative integer n.",
                 "return sum(int(c) for c in str(n))", _int(0, 10**6)),
        _Problem("factorial", [("n", "int")], "int",
                 "Return n! for a non-negative integer n (0! is 1).",
                 "out = 1\nfor k in range(2, n + 1):\n    out *= k\nreturn out", _int(0, 15)),
        _Problem("count_multiples", [("n", "int"), ("k", "int")], "int",
                 "Return how many integers from 1 to n inclusive are divisible by k (k >= 1).",
                 "return n // k if n > 0 else 0",
                 lambda r: (int(r.integers(0, 200)), int(r.integers(1, 12)))),
    ],
    2: [
        _Problem("gcd", [("a", "int"), ("b", "int")], "int",
                 "Return the greatest common divisor of two non-negative integers a and b "
                 "(gcd(0, 0) is 0).",
                 "while b:\n    a, b = b, a % b\nreturn a",
                 lambda r: (int(r.integers(0, 500)), int(r.integers(0, 500)))),
        _Problem("fibonacci", [("n", "int")], "int",
                 "Return the n-th Fibonacci number, where fibonacci(0) = 0 and fibonacci(1) = 1.",
                 "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nreturn a", _int(0, 60)),
        _Problem("is_prime", [("n", "int")], "bool",
                 "Return True if the integer n is a prime number, else False.",
                 "if n < 2:\n    return False\nk = 2\nwhile k * k <= n:\n    if n % k == 0:\n"
                 "        return False\n    k += 1\nreturn True", _int(-5, 400)),
    ],
    3: [
        _Problem("collatz_steps", [("n", "int")], "int",
                 "Starting from the positive integer n, repeatedly replace n by n / 2 if it is "
                 "even and by 3n + 1 if it is odd. Return the number of replacements until n "
                 "is 1.",
                 "steps = 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n"
                 "    steps += 1\nreturn steps", _int(1, 300)),
        _Problem("fizzbuzz", [("n", "int")], "list[str]",
                 "Return a list of the strings for 1..n: 'FizzBuzz' for multiples of 15, 'Fizz' "
                 "for multiples of 3, 'Buzz' for multiples of 5, and the number itself "
                 "otherwise.",
                 "out = []\nfor k in range(1, n + 1):\n    if k % 15 == 0:\n"
                 "        out.append('FizzBuzz')\n    elif k % 3 == 0:\n"
                 "        out.append('Fizz')\n    elif k % 5 == 0:\n"
                 "        out.append('Buzz')\n    else:\n"
                 "        out.append(str(k))\nreturn out", _int(0, 20)),
        _Problem("to_binary", [("n", "int")], "str",
                 "Return the binary representation of the non-negative integer n as a string "
                 "of 0s and 1s, without a prefix ('0' for 0).",
                 "if n == 0:\n    return '0'\nbits = ''\nwhile n:\n    bits = str(n % 2) + bits\n"
                 "    n //= 2\nreturn bits", _int(0, 5000)),
    ],
    4: [
        _Problem("longest_run", [("xs", "list[int]")], "int",
                 "Return the length of the longest contiguous strictly increasing run in xs "
                 "(0 for an empty list).",
                 "best = cur = 0\nprev = None\nfor v in xs:\n"
                 "    cur = cur + 1 if prev is not None and v > prev else 1\n"
                 "    best = max(best, cur)\n    prev = v\nreturn best", _ints(-9, 9, 12)),
        _Problem("max_subarray", [("xs", "list[int]")], "int",
                 "Return the largest sum of a non-empty contiguous sub-list of xs, or 0 if xs "
                 "is empty.",
                 "if not xs:\n    return 0\nbest = cur = xs[0]\nfor v in xs[1:]:\n"
                 "    cur = max(v, cur + v)\n    best = max(best, cur)\nreturn best",
                 _ints(-20, 20, 12)),
        _Problem("find_index", [("xs", "list[int]"), ("target", "int")], "int",
                 "xs is sorted in ascending order with distinct values. Return the index of "
                 "target in xs, or -1 if it is absent.",
                 "lo, hi = 0, len(xs) - 1\nwhile lo <= hi:\n    mid = (lo + hi) // 2\n"
                 "    if xs[mid] == target:\n        return mid\n    if xs[mid] < target:\n"
                 "        lo = mid + 1\n    else:\n        hi = mid - 1\nreturn -1",
                 _sorted_and_target),
    ],
    5: [
        _Problem("count_climbs", [("n", "int")], "int",
                 "Return the number of ways to climb a staircase of n steps taking 1, 2 or 3 "
                 "steps at a time (1 way for n = 0).",
                 "ways = [1, 1, 2]\nfor k in range(3, n + 1):\n"
                 "    ways.append(ways[-1] + ways[-2] + ways[-3])\nreturn ways[n]",
                 _int(0, 40)),
        _Problem("common_prefix", [("words", "list[str]")], "str",
                 "Return the longest common prefix of all the strings in words ('' for an "
                 "empty list).",
                 "if not words:\n    return ''\nprefix = words[0]\nfor w in words[1:]:\n"
                 "    while not w.startswith(prefix):\n        prefix = prefix[:-1]\n"
                 "return prefix",
                 lambda r: ([_word(r, 2) + _word(r, int(r.integers(0, 4)))
                             for _ in range(int(r.integers(0, 4)))],)),
        _Problem("lcs_length", [("a", "str"), ("b", "str")], "int",
                 "Return the length of the longest common subsequence of strings a and b.",
                 "prev = [0] * (len(b) + 1)\nfor ca in a:\n    cur = [0]\n"
                 "    for j, cb in enumerate(b):\n"
                 "        cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))\n"
                 "    prev = cur\nreturn prev[-1]",
                 lambda r: (_word(r, int(r.integers(0, 9))), _word(r, int(r.integers(0, 9))))),
    ],
}  # fmt: skip


@dataclass(frozen=True)
class CodeAlgorithmsConfig(GeneratorConfig):
    """Config of the ``code_algorithms`` family (see `GeneratorConfig`)."""


@register_generator
class CodeAlgorithmsGenerator(TaskGenerator):
    """Implement a loop, a conditional cascade or a classic algorithm of the task's difficulty."""

    name = "code_algorithms"
    domain = "code"
    config_class = CodeAlgorithmsConfig

    def _generate(self, rng: Draws, difficulty: int) -> Draft:
        pool = _PROBLEMS[difficulty]
        p = pool[int(rng.integers(0, len(pool)))]
        cases = [p.draw(rng) for _ in range(7)]
        prompt, answer, solution, meta = build_code_task(
            p.name, p.params, p.returns, p.description, p.body, cases
        )
        meta["problem"] = p.name
        return Draft(prompt, answer, solution, meta)
