"""The config-to-flags layer of the command line: one flag per dataclass field, for every field
type it supports, with clear errors for bad input (bools included: an unknown word is an
error, never False)."""

import argparse
from dataclasses import dataclass
from typing import Literal

import pytest

from offload_agents.cli._configflags import add_config_flags, config_from_flags
from offload_agents.coplms.config import ModelSpec


@dataclass(frozen=True)
class Every:
    """A config with one field of each supported type.

    Attributes:
        count: An int.
        rate: A float.
        name: A string.
        on: A bool.
        mode: A choice.
        seeds: A tuple of ints.
        model: A nested config read from its one-line form.
    """

    count: int = 3
    rate: float = 0.5
    name: str = "x"
    on: bool = False
    mode: Literal["a", "b"] = "a"
    seeds: tuple[int, ...] = (0, 1)
    model: ModelSpec = ModelSpec("gpt2", n_layer=1, n_embd=32, n_head=2)  # noqa: RUF009 (frozen)


def _parse(*argv):
    parser = argparse.ArgumentParser(exit_on_error=False)
    names = add_config_flags(parser, Every)
    return config_from_flags(Every(), parser.parse_args(list(argv)), names)


def test_every_field_type_parses():
    cfg = _parse("--count", "7", "--rate", "0.25", "--name", "y", "--on", "yes", "--mode", "b",
                 "--seeds", "4,5,6", "--model", "llama:2x64:4")  # fmt: skip
    assert cfg == Every(count=7, rate=0.25, name="y", on=True, mode="b", seeds=(4, 5, 6),
                        model=ModelSpec("llama", 2, 64, 4))  # fmt: skip
    assert _parse() == Every()  # no flag: every default kept
    for word, want in (("true", True), ("1", True), ("ON", True), ("false", False),
                       ("0", False), ("no", False), ("off", False)):  # fmt: skip
        assert _parse("--on", word).on is want, word


@pytest.mark.parametrize("argv, fragment", [
    (("--on", "maybe"), "expected true or false, got 'maybe'"),
    (("--count", "three"), "invalid int value"),
    (("--rate", "fast"), "invalid float value"),
    (("--mode", "c"), "choose from ['a', 'b'], got 'c'"),
    (("--seeds", "1,,2"), "no empty item"),
    (("--seeds", "1,x"), "'x' is not INT"),
    (("--model", "gpt3:1x64"), "ARCH:LAYERSxWIDTH"),
])  # fmt: skip
def test_bad_values_are_refused_with_what_was_expected(argv, fragment):
    with pytest.raises(
        argparse.ArgumentError, match=fragment.replace("[", r"\[").replace("(", r"\(")
    ):
        _parse(*argv)


def test_help_shows_each_fields_doc_and_default():
    parser = argparse.ArgumentParser()
    add_config_flags(parser, Every)
    text = " ".join(parser.format_help().split())
    assert "A bool. (default: False)" in text and "A tuple of ints. (default: 0,1)" in text
    assert "(default: gpt2:1x32:2)" in text
