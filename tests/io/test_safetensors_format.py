import json
import os
import stat

import numpy as np
import pytest

pytest.importorskip("safetensors")

from chainrule.io import CheckpointError, atomic_write, read_safetensors, write_safetensors

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8, np.bool_, np.complex64]


def _arrays():
    rng = np.random.default_rng(0)
    out = {f"t_{np.dtype(dt).name}": (rng.standard_normal((3, 4)) * 50).astype(dt) for dt in DTYPES}
    out["scalar"] = np.array(3.5)
    out["empty"] = np.zeros((0, 5), np.float32)
    out["strided"] = np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2]
    out["big_endian"] = np.arange(6, dtype=">f8").reshape(2, 3)
    return out


def test_round_trip_of_every_dtype_and_shape(tmp_path):
    arrays = _arrays()
    path = tmp_path / "a.safetensors"
    write_safetensors(path, arrays, {"note": "hello"})
    back, metadata = read_safetensors(path)
    assert metadata == {"note": "hello"}
    assert set(back) == set(arrays)
    for name, arr in arrays.items():
        assert back[name].shape == arr.shape
        assert back[name].dtype == arr.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back[name], arr)
        assert back[name].flags.aligned


def test_files_load_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = _arrays()
    path = tmp_path / "a.safetensors"
    write_safetensors(path, arrays, {"k": "v"})
    back = st.load_file(str(path))
    for name, arr in arrays.items():
        np.testing.assert_array_equal(back[name], arr)


def test_reads_files_written_by_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    # (the package itself mis-writes non-contiguous arrays, so give it contiguous ones)
    arrays = {k: v for k, v in _arrays().items() if v.dtype.isnative and v.flags.c_contiguous}
    path = tmp_path / "b.safetensors"
    st.save_file(arrays, str(path), metadata={"format": "np"})
    back, metadata = read_safetensors(path)
    assert metadata == {"format": "np"}
    for name, arr in arrays.items():
        np.testing.assert_array_equal(back[name], arr)


def test_bfloat16_is_read_as_float32(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    values = torch.tensor([[1.0, -2.5], [3.0e10, 0.15625]], dtype=torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    st.save_file({"w": values}, str(path))
    back, _ = read_safetensors(path)
    assert back["w"].dtype == np.float32
    np.testing.assert_array_equal(back["w"], values.float().numpy())


def test_bfloat16_without_torch(tmp_path):
    values = np.array([[1.0, -2.5], [2.0**35, 0.15625]], np.float32)  # each exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(_raw_file({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, bits.tobytes()))
    back, _ = read_safetensors(path)
    assert back["w"].dtype == np.float32
    np.testing.assert_array_equal(back["w"], values)


def _valid_file(tmp_path) -> bytes:
    path = tmp_path / "ok.safetensors"
    write_safetensors(path, {"w": np.arange(100, dtype=np.float32), "b": np.ones(3)}, {"x": "y"})
    return path.read_bytes()


def test_every_truncation_is_refused_with_the_path(tmp_path):
    data = _valid_file(tmp_path)
    path = tmp_path / "cut.safetensors"
    for cut in range(len(data)):  # every cut point: in the size field, the header and the tensors
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"cut\.safetensors.*(truncated|only \d+ bytes)"):
            read_safetensors(path)


def test_corrupted_bytes_give_a_checkpoint_error_or_the_file(tmp_path):
    """Random byte changes in the size field and header: refused with our error, never another one."""
    data = _valid_file(tmp_path)
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(0)
    path = tmp_path / "flip.safetensors"
    refused = 0
    for _ in range(300):
        damaged = bytearray(data)
        for i in rng.integers(0, header_end, size=2):
            damaged[i] = rng.integers(0, 256)
        path.write_bytes(bytes(damaged))
        try:
            read_safetensors(path)
        except CheckpointError as err:
            assert "flip.safetensors" in str(err)
            refused += 1
    assert refused > 200


def test_arrays_read_back_are_writable(tmp_path):
    """Optimizers update parameters in place, so loaded arrays must not be read-only views."""
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"w": np.zeros(3, np.float32), "n": np.arange(4)})
    back, metadata = read_safetensors(path)
    assert metadata == {}
    back["w"] += 1.5
    back["n"][0] = 9
    np.testing.assert_array_equal(back["w"], [1.5, 1.5, 1.5])
    assert back["n"].tolist() == [9, 1, 2, 3]


def test_trailing_garbage_is_refused(tmp_path):
    path = tmp_path / "long.safetensors"
    path.write_bytes(_valid_file(tmp_path) + b"xx")
    with pytest.raises(CheckpointError, match="bytes past its last tensor"):
        read_safetensors(path)


@pytest.mark.parametrize("content", [
    b"just some text that is long enough",
    b"PK\x03\x04" + bytes(100),  # a zip (PyTorch's .pt format)
    b"\x80\x04\x95" + bytes(60),  # a pickle
    (20).to_bytes(8, "little") + b"[1, 2, 3]" + b" " * 11,
    (12).to_bytes(8, "little") + b"{not json!}!",
])
def test_non_safetensors_files_are_refused(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"model\.pt .*(not a safetensors|corrupt)"):
        read_safetensors(path)


def _raw_file(header: dict, data: bytes) -> bytes:
    blob = json.dumps(header).encode()
    return len(blob).to_bytes(8, "little") + blob + data


@pytest.mark.parametrize("header, data, message", [
    # size and offsets disagree; a gap before the tensor; a dtype NumPy lacks; an entry without a dtype;
    # two tensors on the same bytes; metadata that is not strings
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4), r"bad\.safetensors is corrupt.*offset"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8), r"bad\.safetensors is corrupt.*offset"),
    ({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, bytes(1), r"bad\.safetensors: tensor 'w' has dtype F8_E4M3, which chainrule cannot read"),
    ({"w": {"shape": [1]}}, b"", r"bad\.safetensors is corrupt.*dtype"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
     bytes(4), r"bad\.safetensors is corrupt.*offset"),
    ({"__metadata__": {"a": 1}}, b"", r"bad\.safetensors is corrupt"),
])
def test_inconsistent_headers_are_refused(tmp_path, header, data, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(_raw_file(header, data))
    with pytest.raises(CheckpointError, match=message):
        read_safetensors(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint file: .*nothing.safetensors"):
        read_safetensors(tmp_path / "nothing.safetensors")


def test_atomic_write_replaces_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"one"))
    atomic_write(path, lambda f: f.write(b"two"))
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_honours_the_umask(tmp_path):
    path = tmp_path / "f.bin"
    old = os.umask(0o022)
    try:
        atomic_write(path, lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_writing_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*nope does not exist"):
        write_safetensors(tmp_path / "nope" / "a.safetensors", {"w": np.zeros(2)})


@pytest.mark.parametrize("bad, dtype", [
    (np.zeros(2, complex), "complex128"),
    (np.array(["ab", "c"]), "<U2"),
    (np.array([None, 1]), "object"),
])
def test_unsupported_dtype_is_refused(tmp_path, bad, dtype):
    with pytest.raises(TypeError, match=f"cannot store tensor 'z' of dtype {dtype}"):
        write_safetensors(tmp_path / "c.safetensors", {"a": np.zeros(2), "z": bad})
    assert not (tmp_path / "c.safetensors").exists()


def test_bad_names_and_metadata_are_refused(tmp_path):
    with pytest.raises(TypeError, match="tensor names must be strings, got 3"):
        write_safetensors(tmp_path / "c.safetensors", {3: np.zeros(2)})
    with pytest.raises(ValueError, match="'__metadata__' is reserved"):
        write_safetensors(tmp_path / "c.safetensors", {"__metadata__": np.zeros(2)})
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        write_safetensors(tmp_path / "c.safetensors", {"a": np.zeros(2)}, {"epoch": 3})
