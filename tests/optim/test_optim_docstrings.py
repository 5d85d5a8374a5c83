"""The runnable examples in the optim docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

import chainrule as cr

MODULES = ["chainrule.optim.sgd", "chainrule.optim.lbfgs", "chainrule.optim.newton", "chainrule.optim.lr_scheduler"]


@pytest.mark.parametrize("name", MODULES)
def test_optim_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"cr": cr}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
