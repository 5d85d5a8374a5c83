"""The runnable examples in the nn docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

import chainrule as cr

MODULES = [
    "chainrule.nn.module", "chainrule.nn.parameter", "chainrule.nn.linear", "chainrule.nn.mlp", "chainrule.nn.loss",
    "chainrule.nn.config", "chainrule.nn.functional", "chainrule.nn.summary", "chainrule.ops.loss",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"cr": cr}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
