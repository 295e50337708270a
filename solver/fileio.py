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
import io
import os
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from solver.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: the default largest input, after decompression (``TIERPLAN_MAX_INPUT`` or ``--max-input`` raise it)
DEFAULT_MAX_INPUT: int = 512 * 2**20
#: the environment variable holding the input limit (a size: ``2GiB``)
MAX_INPUT_ENV = "TIERPLAN_MAX_INPUT"
_CHUNK = 1 << 20


def max_input_bytes() -> int:
    """The largest input file accepted, after decompression, in bytes.

    ``TIERPLAN_MAX_INPUT`` (a size such as ``2GiB``; the CLI's ``--max-input`` sets it) or
    :data:`DEFAULT_MAX_INPUT` (512 MiB).

    Examples
    --------
    >>> max_input_bytes() >= 1
    True
    """
    raw = os.environ.get(MAX_INPUT_ENV)
    if not raw:
        return DEFAULT_MAX_INPUT
    from solver.units import UnitError, parse_size   # lazy: units is a leaf, fileio is imported first
    try:
        limit = parse_size(raw)
    except UnitError as exc:
        raise InputError.single(MAX_INPUT_ENV, raw, str(exc)) from None
    if limit < 1:
        raise InputError.single(MAX_INPUT_ENV, raw, "must be at least 1 byte")
    return limit


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _too_large(p: str, what: str, limit: int) -> InputError:
    from solver.units import format_bytes
    return InputError.single(p, "", f"{what} is larger than the input limit of {format_bytes(limit)} "
                                    f"(raise it with --max-input SIZE or {MAX_INPUT_ENV}=SIZE)")


def read_bytes(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """Read a regular file's bytes, transparently un-gzipping ``.gz`` files.

    Parameters
    ----------
    path : str or PathLike
        The file. A FIFO, device or directory is refused (reading one could block or never end).
    limit : int, optional
        The most bytes accepted, after decompression; default :func:`max_input_bytes`.

    Raises
    ------
    InputError
        When the file is missing, unreadable, not a regular file, larger than ``limit`` or a
        broken gzip stream.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> write_text_atomic(p, "hello")
    >>> read_bytes(p)
    b'hello'
    """
    p = str(path)
    limit = max_input_bytes() if limit is None else limit
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
        with open(os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InputError.single(p, "", f"cannot read file: {_kind(st.st_mode)}, not a regular file")
            if st.st_size > limit:
                raise _too_large(p, f"the file ({st.st_size} B)", limit)
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError.single(p, "", f"cannot read file: {exc.strerror or exc}") from None
    except MemoryError:
        raise InputError.single(p, "", "not enough memory to read the file") from None
    if len(data) > limit:
        raise _too_large(p, "the file", limit)
    if p.endswith(".gz") or data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError.single(p, "", f"broken gzip data: {exc}") from None
        except MemoryError:
            raise InputError.single(p, "", "not enough memory to decompress the file") from None
        if len(data) > limit:
            raise _too_large(p, "the decompressed data", limit)
    return data


def decode_json(data: bytes, file: str) -> Any:
    """Decode JSON bytes generically, reporting position on failure."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InputError.single(file, "", f"malformed JSON: {exc}") from None
    except RecursionError:
        raise too_deep(file) from None


def too_deep(file: str) -> InputError:
    """The error of a document nested more deeply than the readers follow."""
    return InputError.single(file, "", "nested too deeply (arrays or objects within each other hundreds of levels "
                                       "deep): not a tierplan document")


def read_document(path: str | os.PathLike[str]) -> Any:
    """Read a JSON (``.json``, ``.json.gz``) or TOML (``.toml``) document as plain Python data."""
    p = str(path)
    data = read_bytes(p)
    if p.endswith(".toml") or p.endswith(".toml.gz"):
        try:
            return tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError.single(p, "", f"malformed TOML: {exc}") from None
        except RecursionError:
            raise too_deep(p) from None
    return decode_json(data, p)


def _umask() -> int:
    """The process's umask, read without changing it where ``/proc`` tells it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)   # pragma: no cover - no /proc: the classic read-and-restore
    os.umask(mask)           # pragma: no cover
    return mask              # pragma: no cover


def check_output_path(path: str | os.PathLike[str], flag: str | None = None,
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse an output path that would destroy something: an input, or a node that is not a file.

    Parameters
    ----------
    path : str or PathLike
        Where the command will write.
    flag : str, optional
        The option naming it, for the message (``-o``); without it the message starts with the path.
    inputs : iterable of paths
        The command's input files: writing onto one of them is refused (same resolved path or
        same inode).

    Raises
    ------
    InputError
        When ``path`` exists and is not a regular file (a directory, symbolic link, device,
        FIFO), or is one of ``inputs``.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> check_output_path(os.path.join(d, "new.json"), "-o", [])
    >>> check_output_path(d, "-o")
    Traceback (most recent call last):
    ...
    solver.errors.InputError: -o: ...: a directory exists there; refusing to replace it
    """
    p = str(path)

    def refuse(message: str) -> InputError:
        return InputError.single(flag, p, message) if flag else InputError.single(p, "", message)

    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise refuse(f"cannot write there: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise refuse(f"{_kind(st.st_mode)} exists there; refusing to replace it")
    if st is None:
        above = Path(os.path.abspath(p)).parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if not above.is_dir():
            raise refuse(f"cannot create a folder there: {above} is not a folder")
        if not os.access(above, os.W_OK | os.X_OK):
            raise refuse(f"cannot write in folder {above}: permission denied")
    target = os.path.realpath(p)
    for src in inputs:
        s = str(src)
        same = os.path.realpath(s) == target
        if not same and st is not None:
            try:
                other = os.stat(s)
                same = (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
            except OSError:
                pass
        if same:
            raise refuse(f"is an input of this command ({s}); refusing to overwrite it")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync'd, then renamed.

    A ``.gz`` suffix gzips the data (with a fixed mtime, so output is byte-identical run to run).
    A new file gets the permissions of the user's umask (as ``open`` would); a replaced file keeps
    its own. An existing path that is not a regular file is never replaced.

    Raises
    ------
    InputError
        When the path is a directory, symbolic link or device, or cannot be written (the
        message names the path and the system's reason).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a", "b.txt")
    >>> write_bytes_atomic(p, b"x"); open(p, "rb").read()
    b'x'
    """
    p = Path(path)
    check_output_path(p)
    if p.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        mode = stat.S_IMODE(os.stat(p).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        tmp = None
        _fsync_folder(folder)
    except OSError as exc:
        raise InputError.single(str(p), "", f"cannot write file: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (best effort: not every file system lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
