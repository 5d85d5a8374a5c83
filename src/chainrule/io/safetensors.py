"""The safetensors file format, read and written with NumPy alone, and atomic file writes.

A safetensors file is

    8 bytes    N, the header size (little-endian uint64)
    N bytes    a JSON header: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...],
               "data_offsets": [begin, end]}, ...}, padded with spaces
    the rest   the tensors' bytes (little-endian, C order), back to back; offsets count from here.

It holds only numbers and strings: reading one never runs code (unlike pickle). Files written here
load with the ``safetensors`` package (and so in PyTorch), and files it writes load here. The reader
checks the header against the file size, so a truncated or foreign file is refused with a clear error.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("bool"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint: truncated, corrupt, or not in the safetensors format."""


def _dtype_name(arr: np.ndarray, name: str) -> str:
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in _NAMES:
        raise TypeError(f"cannot store tensor {name!r} of dtype {arr.dtype} in a safetensors file")
    return _NAMES[key]


# ---- writing -----------------------------------------------------------------------------------------
def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file so that readers see either the old file or the complete new one, never a part:
    write to a temporary file in the same folder, flush and fsync it, ``os.replace`` it over ``path``
    (atomic on POSIX and Windows), then fsync the folder so the rename survives a power loss."""
    path = Path(os.fspath(path))
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {directory} does not exist")
    tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # O_EXCL: never follow or clobber someone else's file; mode 0o666 lets the umask decide, as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Atomically write ``tensors`` (name -> ndarray) and string ``metadata`` as a safetensors file.

    Tensors are laid out largest item size first, so every tensor starts at a multiple of its item size
    (the header is padded to a multiple of 8), as the reference implementation does.
    """
    arrays = {}
    for name, arr in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be strings, got {name!r}")
        arr = np.asarray(arr)
        dtype_name = _dtype_name(arr, name)
        arrays[name] = (dtype_name, arr.astype(_DTYPES[dtype_name], order="C", copy=False))
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    order = sorted(arrays, key=lambda n: (-arrays[n][1].dtype.itemsize, n))
    offset = 0
    for name in order:
        dtype_name, arr = arrays[name]
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-len(blob) % 8)

    def write(f: BinaryIO) -> None:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for name in order:
            arr = arrays[name][1]
            if arr.nbytes:
                f.write(memoryview(arr.reshape(-1)).cast("B"))

    atomic_write(path, write)


# ---- reading -----------------------------------------------------------------------------------------
def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    # bfloat16 is the top half of a float32: shift the 16 bits into place.
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``({name: ndarray}, metadata)``, tensors in the header's order.

    bfloat16 tensors (common in files from PyTorch) come back as float32. Raises :class:`CheckpointError`
    naming the path when the file is truncated, corrupt or not a safetensors file.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a safetensors checkpoint: it is only {size} bytes long (empty or truncated)")
        n = int.from_bytes(head, "little")
        if n > _MAX_HEADER:
            raise CheckpointError(f"{path} is not a safetensors checkpoint (its first 8 bytes do not give a plausible header size)")
        if 8 + n > size:
            raise CheckpointError(
                f"{path} is truncated or not a safetensors checkpoint: its header should be {n} bytes "
                f"but the file has only {size - 8} after the size field"
            )
        raw_header = f.read(n)
        header = _parse_header(raw_header, path)
        metadata = header.pop("__metadata__", None) or {}
        entries = _check_entries(header, path)
        expected = max((end for _, _, _, (_, end) in entries), default=0)
        found = size - 8 - n
        if found != expected:
            what = "truncated" if found < expected else "corrupt (it has bytes past its last tensor)"
            raise CheckpointError(
                f"{path} is {what}: the header describes {expected} bytes of tensor data, the file holds {found}"
            )
        buffer = bytearray(found)
        if f.readinto(buffer) != found:
            raise CheckpointError(f"{path} is truncated: it changed size while being read")
    tensors = {}
    for name, dtype_name, shape, (begin, end) in entries:
        raw_dtype = np.dtype("<u2") if dtype_name == "BF16" else _DTYPES[dtype_name]
        count = (end - begin) // raw_dtype.itemsize
        arr = np.frombuffer(buffer, raw_dtype, count, begin).reshape(shape)
        if dtype_name == "BF16":
            arr = _bf16_to_f32(arr)
        elif begin % raw_dtype.itemsize:
            arr = arr.copy()  # keep every array aligned
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        tensors[name] = arr
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path} is corrupt: its __metadata__ is not a map of strings")
    return tensors, metadata


def _parse_header(raw: bytes, path: Path) -> dict:
    if not raw.lstrip()[:1] == b"{":
        raise CheckpointError(f"{path} is not a safetensors checkpoint (no JSON header after the size field)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt or not a safetensors checkpoint: its header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors checkpoint: its header is not a JSON object")
    return header


def _check_entries(header: dict, path: Path) -> list:
    entries = []
    for name, info in header.items():
        try:
            dtype_name, shape, (begin, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path} is corrupt: the header entry for tensor {name!r} is malformed") from None
        if dtype_name not in _DTYPES and dtype_name != "BF16":
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype_name}, which chainrule cannot read")
        itemsize = 2 if dtype_name == "BF16" else _DTYPES[dtype_name].itemsize
        if any(s < 0 for s in shape) or not 0 <= begin <= end or end - begin != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise CheckpointError(
                f"{path} is corrupt: tensor {name!r} of shape {tuple(shape)} and dtype {dtype_name} "
                f"does not match its data offsets [{begin}, {end}]"
            )
        entries.append((name, dtype_name, tuple(shape), (begin, end)))
    # The tensors must tile the data area: no gaps, no overlaps.
    position = 0
    for name, _, _, (begin, end) in sorted(entries, key=lambda e: e[3]):
        if begin != position:
            raise CheckpointError(f"{path} is corrupt: tensor {name!r} starts at byte {begin}, expected {position}")
        position = end
    return entries
