"""Command-line flags generated from a config dataclass: one ``--field-name`` per field, its
help text taken from the class docstring's ``Attributes:`` section, the default shown.

Why our own rather than tyro or jsonargparse: the command line is argparse subcommands with
hand-written flags (``--out``, ``--quick``, ``--preset``...) beside the generated ones, each
generated flag overrides a *preset's* value only when given (``default=None``), and nested
configs (a model spec) are typed in their one-line form (``llama:2x64``) rather than as one
flag per subfield. That is about 150 lines, every field type tested (tests/test_configflags.py:
int, float, str, bool, Literal, tuples, nested), with no new dependency. What it does not do:
nested dataclasses as groups of flags, so `DemoConfig` re-declares the `GRPOConfig` fields
the demo exposes, with the demo's defaults (`offload_agents.grpo.demo_config.PASSED_TO_GRPO`
names them and says why; a test keeps each one GRPOConfig's name and type and checks it
reaches every method's trainer)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from typing import Any


def field_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` parsed from the ``Attributes:`` section of ``cls.__doc__``, at
    whatever indentation the docstring uses (the entries' indentation is read from the first
    one; deeper lines continue an entry, the first line back at the section's level ends it).

    >>> class C:
    ...     \"\"\"A config.
    ...
    ...     Attributes:
    ...       a: The first
    ...         (continued).
    ...       b: The second.
    ...     Returns:
    ...       nothing.
    ...     \"\"\"
    >>> field_docs(C)
    {'a': 'The first (continued).', 'b': 'The second.'}
    """
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() == "Attributes:"]
    if not heads:
        return {}
    section = len(lines[heads[0]]) - len(lines[heads[0]].lstrip())
    out: dict[str, str] = {}
    current, indent = None, None
    for line in lines[heads[0] + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= section:
            break  # the next section
        indent = depth if indent is None else indent
        m = re.match(r"^(\w+):\s*(.*)$", line.strip())
        if depth == indent and m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current:
            out[current] += " " + line.strip()
    return out


def _parser_for(tp: Any, name: str) -> tuple[Any, str]:
    """``(parse function, metavar)`` for a field type."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        (inner, *_) = typing.get_args(tp)
        one, meta = _parser_for(inner, name)

        def parse_tuple(text: str) -> tuple[Any, ...]:
            items = [x.strip() for x in text.split(",")]
            if not any(items) or not all(items):
                raise argparse.ArgumentTypeError(
                    f"--{name.replace('_', '-')} needs a comma-separated list of {meta} with no "
                    f"empty item, got {text!r}"
                )
            out = []
            for x in items:
                try:
                    out.append(one(x))
                except (ValueError, argparse.ArgumentTypeError):
                    raise argparse.ArgumentTypeError(
                        f"--{name.replace('_', '-')}: {x!r} is not {meta} (a comma-separated "
                        f"list of {meta}, e.g. 0,1,2)"
                    ) from None
            return tuple(out)

        return parse_tuple, f"{meta},..."
    if origin is typing.Literal:
        choices = typing.get_args(tp)

        def parse_choice(text: str) -> Any:
            if text not in choices:
                raise argparse.ArgumentTypeError(f"choose from {list(choices)}, got {text!r}")
            return text

        return parse_choice, "{" + ",".join(map(str, choices)) + "}"
    if isinstance(tp, type) and hasattr(tp, "from_flag"):
        # A nested config (e.g. a model spec) read from its one-line form.
        def parse_nested(text: str) -> Any:
            try:
                return tp.from_flag(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        return parse_nested, tp.__name__.upper()
    if tp is bool:

        def parse_bool(text: str) -> bool:
            word = text.strip().lower()
            if word in ("1", "true", "yes", "on"):
                return True
            if word in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")

        return parse_bool, "BOOL"
    if tp in (int, float, str):
        return tp, tp.__name__.upper()
    raise TypeError(f"no command-line parser for field {name!r} of type {tp!r}")


def _shown(value: Any) -> str:
    """A default as the flag would be typed (a nested config in its one-line form)."""
    return value.flag() if hasattr(value, "flag") else str(value)


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (), defaults: Any = None
) -> list[str]:
    """Add one flag per field of the dataclass ``cls`` (``default=None``: the flag overrides
    the field only when given). Returns the field names added."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    shown = defaults if defaults is not None else cls()
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name.startswith("_"):
            continue
        parse, meta = _parser_for(hints[f.name], f.name)
        value = getattr(shown, f.name)
        value = ",".join(map(_shown, value)) if isinstance(value, tuple) else _shown(value)
        help_text = f"{docs.get(f.name, '')} (default: {value})".strip()
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=parse,
                            default=None, metavar=meta, help=help_text)  # fmt: skip
        names.append(f.name)
    return names


def config_from_flags(base: Any, args: argparse.Namespace, names: list[str]) -> Any:
    """``base`` with the fields given on the command line replaced (validated by the class; a
    rejected value is a ValueError, which the command line reports in one line)."""
    changes = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    try:
        return dataclasses.replace(base, **changes) if changes else base
    except TypeError as exc:
        raise ValueError(str(exc)) from None
