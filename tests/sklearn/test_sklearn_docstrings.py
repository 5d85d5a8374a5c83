"""The runnable examples in chainrule.sklearn's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import warnings

import pytest

import chainrule as cr

MODULES = ["chainrule.sklearn", "chainrule.sklearn.mlp", "chainrule.sklearn.net"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the examples' short runs stop at max_iter
        result = doctest.testmod(module, extraglobs={"cr": cr}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
