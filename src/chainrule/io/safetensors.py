"""Safetensors files, read and written with the ``safetensors`` package, and atomic file writes.

A safetensors file is an 8-byte little-endian header size N, a JSON header of N bytes (each tensor's
dtype, shape and byte range, plus an optional ``"__metadata__"`` map of strings), then the tensors'
bytes back to back. It holds only numbers and strings: reading one never runs code (unlike pickle).

The ``safetensors`` package (the format's reference implementation, in the ``all`` extra) encodes and
validates the files; this module adds what a checkpoint needs on top of it: atomic writes, NumPy arrays
that are writable and aligned, bfloat16 read as float32, and errors that name the file and say whether
it is truncated, has bytes past its end, or is not a safetensors file at all.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Dtype codes of the format that NumPy can hold, as little-endian NumPy dtypes (the package hands raw
# bytes and a code to :func:`read_safetensors`; writing maps NumPy dtypes to codes inside the package).
# BF16 is read as float32; the float8 and float4 codes have no NumPy dtype and are refused.
_READABLE = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "C64": "<c8",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
    "BOOL": "?",
}  # fmt: skip
_MAX_HEADER = 100 * 1024 * 1024  # the package's limit on the header size


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint: truncated, corrupt, or not in the safetensors format."""


def _package():
    """The ``safetensors`` package, imported on first use: the core of chainrule needs NumPy only."""
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            "saving and loading checkpoints needs the safetensors package: pip install 'chainrule[all]'"
        ) from None
    return safetensors


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

    The bytes are made by ``safetensors.numpy.save`` (little-endian, C order, aligned as the package lays
    them out), then written with :func:`atomic_write`. Raises ``TypeError`` naming the tensor whose dtype
    the format cannot hold (complex128, strings, objects, ...).
    """
    st = _package()
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"write_safetensors: path must be a str or os.PathLike, got {type(path).__name__}")
    arrays = {}
    for name, arr in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved in safetensors files and cannot name a tensor")
        # The package copies raw memory from the array's data pointer, so it must be C-contiguous.
        arrays[name] = np.asarray(arr, order="C")
    if metadata and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("safetensors metadata must map strings to strings")
    try:
        data = st.numpy.save(arrays, metadata=dict(metadata) if metadata else None)
    except st.SafetensorError as err:
        raise TypeError(_unstorable(st, arrays, err)) from None
    data = _sorted_metadata(data)
    atomic_write(path, lambda f: f.write(data))


def _sorted_metadata(data: bytes) -> bytes:
    """The package writes ``__metadata__`` in its hash map's order, which changes from process to
    process; rewrite the header with the metadata keys sorted, so the same tensors and metadata always
    give the same bytes. Offsets count from the end of the header, so only the size field changes; the
    header is padded with spaces to a multiple of 8 bytes, as the package pads it."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if "__metadata__" not in header:
        return data
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def _unstorable(st, arrays: dict[str, np.ndarray], err: Exception) -> str:
    """Name the tensor the package refused (its error gives only the dtype): try each one, empty."""
    for name, arr in arrays.items():
        try:
            st.numpy.save({name: np.empty(0, arr.dtype)})
        except st.SafetensorError:
            return f"cannot store tensor {name!r} of dtype {arr.dtype} in a safetensors file"
    return f"cannot write these tensors as a safetensors file ({err})"


# ---- reading -----------------------------------------------------------------------------------------
def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    # bfloat16 is the top half of a float32: shift the 16 bits into place.
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``({name: ndarray}, metadata)``, tensors in the order of their bytes.

    The file is read once and parsed and validated by ``safetensors.deserialize`` (header, dtypes,
    shapes, byte ranges that tile the data exactly). Arrays come back writable, aligned and in native
    byte order; bfloat16 tensors (common in files from PyTorch) come back as float32. Raises
    :class:`CheckpointError` naming the path when the file is truncated, corrupt or not a safetensors
    file, or holds a dtype NumPy cannot represent (float8, ...).
    """
    st = _package()
    path = Path(os.fspath(path))
    data = _read_checkpoint_bytes(path)  # one read: the header and the tensors come from the same file
    try:
        entries = st.deserialize(data)
    except st.SafetensorError as err:
        raise CheckpointError(_diagnose(path, data, err)) from None
    header_size = int.from_bytes(data[:8], "little")
    try:
        metadata = json.loads(data[8 : 8 + header_size].decode("utf-8")).get("__metadata__") or {}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:  # accepted by the package
        raise CheckpointError(f"{path} is corrupt: its header is not valid JSON ({err})") from None
    del data
    tensors = {}
    for name, entry in entries:
        code, shape, buffer = entry["dtype"], tuple(entry["shape"]), entry["data"]
        if code == "BF16":
            arr = _bf16_to_f32(np.frombuffer(buffer, "<u2").reshape(shape))
        elif code in _READABLE:
            arr = np.frombuffer(buffer, _READABLE[code]).reshape(shape)  # writable: buffer is a bytearray
            if not arr.flags.aligned:
                arr = arr.copy()
        else:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {code}, which chainrule cannot read")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        tensors[name] = arr
    return tensors, metadata


_FILE_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe"),
               (stat.S_ISSOCK, "a socket"))


def _read_checkpoint_bytes(path: Path) -> bytes:
    """The bytes of a regular file, refusing folders, devices and pipes (``/dev/zero`` would never end)
    and a size field that cannot fit the file, before reading the rest."""
    try:
        # O_NONBLOCK: opening a pipe must not wait for a writer; it changes nothing for a regular file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such checkpoint file: {path}") from None
    except IsADirectoryError:  # Windows refuses to open a folder
        raise IsADirectoryError(_folder_message(path)) from None
    except OSError as err:
        raise OSError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(_folder_message(path))
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a regular file")
        raise CheckpointError(f"{path} is not a checkpoint file: it is {kind}, not a regular file")
    size = info.st_size
    with os.fdopen(fd, "rb") as f:
        try:
            head = f.read(8)
            if len(head) == 8 and int.from_bytes(head, "little") > min(_MAX_HEADER, size - 8):
                return head  # _diagnose names the implausible size without reading the rest
            return head + f.read()
        except OSError as err:
            raise OSError(f"cannot read checkpoint {path}: {err.strerror or err}") from None


def _folder_message(path: Path) -> str:
    hint = " (a run folder? its checkpoint is model.safetensors inside)" if (path / "model.safetensors").is_file() else ""
    return f"{path} is a folder, not a checkpoint file{hint}"


def _diagnose(path: Path, data: bytes, err: Exception) -> str:
    """A clear reason for a file the package refused: say *truncated* when bytes are missing and
    *not a safetensors checkpoint* when the start does not look like one, else pass on its reason."""
    size = len(data)
    if size < 8:
        return f"{path} is not a safetensors checkpoint: it is only {size} bytes long (empty or truncated)"
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER:
        return f"{path} is not a safetensors checkpoint (its first 8 bytes do not give a plausible header size)"
    if len(data) == 8:  # only the size field was read: it claims more bytes than the file has
        return (f"{path} is truncated or not a safetensors checkpoint: its header should be {n} bytes, more than "
                "the file holds")
    if 8 + n > size:
        return (
            f"{path} is truncated or not a safetensors checkpoint: its header should be {n} bytes "
            f"but the file has only {size - 8} after the size field"
        )
    if data[8 : 8 + n].lstrip()[:1] != b"{":
        return f"{path} is not a safetensors checkpoint (no JSON header after the size field)"
    expected = _data_size(data[8 : 8 + n])
    found = size - 8 - n
    if expected is not None and found != expected:
        what = "truncated" if found < expected else "corrupt (it has bytes past its last tensor)"
        return f"{path} is {what}: the header describes {expected} bytes of tensor data, the file holds {found}"
    reason = str(err).removeprefix("Error while deserializing: ")
    return f"{path} is corrupt or not a safetensors checkpoint: {reason}"


def _data_size(header: bytes) -> int | None:
    """The end of the last tensor's bytes according to a header, or None if it cannot be told."""
    try:
        entries = json.loads(header.decode("utf-8"))
        return max((int(v["data_offsets"][1]) for k, v in entries.items() if k != "__metadata__"), default=0)
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, IndexError, TypeError, ValueError,
            RecursionError):
        return None
