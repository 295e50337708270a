"""Reading and writing files: JSON, gzip'd JSON, TOML; atomic writes.

Examples
--------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> write_json_atomic(os.path.join(d, "x.json.gz"), {"a": 1})
>>> read_document(os.path.join(d, "x.json.gz"))
{'a': 1}
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from solver.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a file's bytes, transparently un-gzipping ``.gz`` files.

    Raises
    ------
    InputError
        When the file is missing, unreadable or a broken gzip stream.
    """
    p = str(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError.single(p, "", f"cannot read file: {exc.strerror or exc}") from None
    if p.endswith(".gz") or data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError.single(p, "", f"broken gzip data: {exc}") from None
    return data


def decode_json(data: bytes, file: str) -> Any:
    """Decode JSON bytes generically, reporting position on failure."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InputError.single(file, "", f"malformed JSON: {exc}") from None


def read_document(path: str | os.PathLike[str]) -> Any:
    """Read a JSON (``.json``, ``.json.gz``) or TOML (``.toml``) document as plain Python data."""
    p = str(path)
    data = read_bytes(p)
    if p.endswith(".toml") or p.endswith(".toml.gz"):
        try:
            return tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError.single(p, "", f"malformed TOML: {exc}") from None
    return decode_json(data, p)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    A ``.gz`` suffix gzips the data (with a fixed mtime, so output is byte-identical run to run).
    """
    p = Path(path)
    if p.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    folder = p.parent if str(p.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write text (UTF-8) atomically; see :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(obj: Any, indent: int | None = 1) -> bytes:
    """Encode ``obj`` as JSON bytes (msgspec; dataclasses and Structs are supported)."""
    raw = msgspec.json.encode(obj)
    if indent is None:
        return raw
    return msgspec.json.format(raw, indent=indent)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = 1) -> None:
    """Encode ``obj`` as JSON and write it atomically (gzip for ``.gz``)."""
    write_bytes_atomic(path, dumps_json(obj, indent=indent) + b"\n")
