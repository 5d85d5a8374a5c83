"""Without the safetensors package the core still imports, and checkpoints say how to get it."""

import sys

import pytest

import chainrule as cr


@pytest.fixture
def without_safetensors(monkeypatch):
    # A None entry in sys.modules makes `import safetensors` raise ImportError.
    for name in [m for m in sys.modules if m == "safetensors" or m.startswith("safetensors.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)


def test_save_and_load_name_the_extra(tmp_path, without_safetensors):
    with pytest.raises(ImportError, match=r"needs the safetensors package: pip install 'chainrule\[all\]'"):
        cr.save({"w": cr.ones(2)}, tmp_path / "a.safetensors")
    assert not (tmp_path / "a.safetensors").exists()
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[all\]'"):
        cr.load(tmp_path / "a.safetensors")
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[all\]'"):
        cr.load_model(tmp_path / "a.safetensors")
