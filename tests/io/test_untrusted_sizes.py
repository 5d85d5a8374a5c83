"""Loading never trusts sizes: the architecture in a file's metadata is checked against its tensors
before memory is taken, and every bad file is refused with an error that names it."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import chainrule as cr
from chainrule.io import CheckpointError, read_safetensors, write_safetensors


def _small_mlp_file(path):
    """A 37 KB checkpoint of an MLP 64-128-6 (9,094 float32 values)."""
    cr.manual_seed(0)
    cr.save(cr.nn.MLP([64, 128, 6]), path)
    return path


def _tamper(path, change):
    """Rewrite the chainrule metadata of a checkpoint with ``change(structure)``; tensors are kept."""
    tensors, metadata = read_safetensors(path)
    structure = json.loads(metadata["chainrule"])
    result = change(structure)
    text = result if isinstance(result, str) else json.dumps(structure)
    write_safetensors(path, tensors, {**metadata, "chainrule": text})
    return path


def _set_sizes(sizes):
    def change(structure):
        structure["__module__"]["config"]["args"]["sizes"] = sizes
    return change


_MEASURE = textwrap.dedent("""
    import os, sys, tracemalloc
    import chainrule as cr
    path = sys.argv[1]
    tracemalloc.start()
    try:
        cr.load_model(path)
        message = "loaded"
    except cr.io.CheckpointError as err:
        message = str(err)
    peak = tracemalloc.get_traced_memory()[1]
    print(peak)
    print(message)
""")


@pytest.mark.parametrize("sizes, shape, values", [
    ([20000, 20000, 6], "(20000, 20000)", "400,000,000"),
    ([64, 1000000, 6], "(1000000, 64)", "64,000,000"),
    ([1000000, 1000000, 6], "(1000000, 1000000)", "1,000,000,000,000"),
])
def test_a_small_checkpoint_declaring_a_huge_mlp_is_refused_within_a_memory_bound(tmp_path, sizes, shape, values):
    path = _tamper(_small_mlp_file(tmp_path / "huge.safetensors"), _set_sizes(sizes))
    size = os.path.getsize(path)
    assert 30_000 < size < 40_000
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak, message = proc.stdout.splitlines()
    assert message == (
        f"{path}: the stored architecture does not match the stored tensors: it needs an array of shape {shape} "
        f"({values} values), but the file holds 9,094 values in 4 tensors; its largest tensor, '0.weight', has "
        "shape (128, 64)"
    )
    # Measured: about 3x the file size (the file's bytes, their copy as tensors, the parsed metadata).
    # The old loader allocated the declared 1.6 GB before comparing shapes.
    assert int(peak) < 8 * size, (peak, size)


def test_a_smaller_mismatch_names_the_file_the_key_and_both_shapes(tmp_path):
    path = _tamper(_small_mlp_file(tmp_path / "m.safetensors"), _set_sizes([64, 100, 6]))
    with pytest.raises(CheckpointError) as info:
        cr.load_model(path)
    assert str(info.value) == (
        f"{path}: the stored weights do not fit the stored architecture: load_state_dict: size mismatch for "
        "'0.weight': the checkpoint has shape (128, 64), the model has (100, 64)"
    )


def test_an_unknown_class_or_key_names_the_file(tmp_path):
    def evil(structure):
        structure["__module__"]["config"]["class"] = "os.system"
    path = _tamper(_small_mlp_file(tmp_path / "a.safetensors"), evil)
    with pytest.raises(CheckpointError) as info:
        cr.load_model(path)
    assert str(info.value).startswith(
        f"{path}: cannot rebuild the saved model: from_config: unknown module class 'os.system'; known classes: "
    )

    def rename(structure):
        state = structure["__module__"]["state"]
        state["zz"] = state.pop("0.weight")
    path = _tamper(_small_mlp_file(tmp_path / "b.safetensors"), rename)
    with pytest.raises(CheckpointError) as info:
        cr.load_model(path)
    assert str(info.value) == (
        f"{path}: the stored weights do not fit the stored architecture: load_state_dict: MLP: missing keys "
        "['0.weight']; unexpected keys ['zz']"
    )


@pytest.mark.parametrize("depth", [150, 100_000])
def test_deeply_nested_metadata_is_refused_naming_the_file(tmp_path, depth):
    path = _tamper(_small_mlp_file(tmp_path / "deep.safetensors"), lambda s: "[" * depth + "]" * depth)
    expected = f"{path} is corrupt: its chainrule metadata is nested more than 100 levels deep"
    for load in (cr.load, cr.load_model):
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert str(info.value) == expected


_MALFORMED = [
    ({"__module__": 5}, "a saved module that is not a dict, got 5", "a saved module without a 'state' dict, got 5"),
    ({"__module__": {"class": "MLP", "config": None, "state": 3}}, None,
     "a saved module without a 'state' dict, got {'class': 'MLP', 'config': None, 'state': 3}"),
    ({"w": {"__tensor__": [1, 2]}}, None, "a tensor reference that is not a name, got [1, 2]"),
    ({"w": {"__tuple__": 3}}, None, "a tuple that is not a list, got {'__tuple__': 3}"),
    ({"w": {"__dict__": [[1]]}}, None, "a dict that is not a list of [key, value] pairs, got {'__dict__': [[1]]}"),
    ({"w": {"__dict__": [[{"a": 1}, 2]]}}, None, "a dict key that cannot be a key, got {'a': 1}"),
]


@pytest.mark.parametrize("structure, model_error, load_error", _MALFORMED)
def test_malformed_metadata_gets_a_clear_error_naming_the_file(tmp_path, structure, model_error, load_error):
    path = _tamper(_small_mlp_file(tmp_path / "bad.safetensors"), lambda s: json.dumps(structure))
    with pytest.raises(CheckpointError) as info:
        cr.load(path)
    assert str(info.value) == f"{path} is corrupt: its chainrule metadata has {load_error}"
    with pytest.raises(CheckpointError) as info:
        cr.load_model(path)
    assert str(info.value).startswith(f"{path}")
    if model_error is not None:
        assert str(info.value) == f"{path} is corrupt: its chainrule metadata has {model_error}"


def test_a_config_that_is_not_a_config_names_the_file(tmp_path):
    def change(structure):
        structure["__module__"]["config"] = "rm -rf"
    path = _tamper(_small_mlp_file(tmp_path / "c.safetensors"), change)
    with pytest.raises(CheckpointError) as info:
        cr.load_model(path)
    assert str(info.value) == (
        f"{path}: cannot rebuild the saved model: from_config: expected a dict with keys 'class' and 'args', "
        "got 'rm -rf'"
    )


def test_a_folder_is_refused_naming_it(tmp_path):
    for load in (cr.load, cr.load_model):
        with pytest.raises(IsADirectoryError) as info:
            load(tmp_path)
        assert str(info.value) == f"{tmp_path} is a folder, not a checkpoint file"
    _small_mlp_file(tmp_path / "model.safetensors")
    with pytest.raises(IsADirectoryError) as info:
        cr.load_model(tmp_path)
    assert str(info.value) == (
        f"{tmp_path} is a folder, not a checkpoint file (a run folder? its checkpoint is model.safetensors inside)"
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_refused_naming_them(device):
    for load in (cr.load, cr.load_model):
        with pytest.raises(CheckpointError) as info:
            load(device)
        assert str(info.value) == f"{device} is not a checkpoint file: it is a character device, not a regular file"


def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code = f"import chainrule as cr\ntry:\n    cr.load({str(fifo)!r})\nexcept cr.io.CheckpointError as e:\n    print(e)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == f"{fifo} is not a checkpoint file: it is a pipe, not a regular file", proc.stderr


def test_a_size_field_larger_than_the_file_is_refused_without_reading_on(tmp_path):
    path = tmp_path / "big-claim.safetensors"
    path.write_bytes((10_000_000).to_bytes(8, "little") + b'{"x": 1}' + b"\0" * 100)
    with pytest.raises(CheckpointError) as info:
        cr.load(path)
    assert str(info.value) == (
        f"{path} is truncated or not a safetensors checkpoint: its header should be 10000000 bytes, more than the "
        "file holds"
    )


def test_every_damaged_checkpoint_error_names_the_file(tmp_path):
    good = _small_mlp_file(tmp_path / "good.safetensors").read_bytes()
    header = int.from_bytes(good[:8], "little")
    damaged = {
        "empty": b"",
        "short": good[:5],
        "truncated": good[: len(good) // 2],
        "trailing": good + b"\0" * 16,
        "not-json-header": good[:8] + b"x" * header + good[8 + header:],
        "text": b"hello, this is not a checkpoint at all, just some text" * 10,
        "zeros": b"\0" * 4096,
    }
    for name, data in damaged.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        for load in (cr.load, cr.load_model):
            with pytest.raises((CheckpointError, OSError)) as info:
                load(path)
            message = str(info.value)
            assert message.startswith(str(path)), (name, message)
            assert "\n" not in message
    with pytest.raises(FileNotFoundError) as info:
        cr.load(tmp_path / "missing.safetensors")
    assert str(info.value) == f"no such checkpoint file: {tmp_path / 'missing.safetensors'}"


def test_a_valid_checkpoint_still_loads_exactly_within_its_budget(tmp_path):
    """The budget is what the file stores: every real model fits it exactly (planted: a budget of 0
    refuses this model, see the test above for the message)."""
    cr.manual_seed(3)
    model = cr.nn.Sequential(cr.nn.Conv2d(1, 4, 3), cr.nn.BatchNorm2d(4), cr.nn.PReLU(4), cr.nn.Flatten(),
                             cr.nn.Linear(4 * 6 * 6, 3))
    path = tmp_path / "ok.safetensors"
    cr.save(model, path)
    loaded = cr.load_model(path)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v.numpy(), v2.numpy())
