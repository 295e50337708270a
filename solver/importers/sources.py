"""Reading importer sources: JSON files, gzip'd JSON, and JSON files inside tar archives.

Profilers often ship one file per rank in an archive (``dlrm_pytorch_et.tar.gz`` holds
``dlrm_eg_0.json`` ... ``dlrm_eg_7.json``). :func:`read_json_source` picks one member: the one
named by ``member``, else the one whose rank (the first integer in its base name) is ``rank``,
else the lowest rank, and says which one it took.

Examples
--------
>>> import tempfile, os, json
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "x.json")
>>> _ = open(p, "w").write(json.dumps({"a": 1}))
>>> read_json_source(p).document
{'a': 1}
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from solver.errors import InputError
from solver.fileio import decode_json, read_bytes

Source = Union[str, "os.PathLike[str]", Mapping[str, Any], list[Any]]

_INT_RE = re.compile(r"\d+")


@dataclass(frozen=True)
class LoadedSource:
    """A decoded JSON document and where it came from.

    Attributes
    ----------
    document : Any
        The decoded JSON.
    label : str
        The file (and archive member) for messages: ``a.tar.gz:dir/b.json``.
    note : str or None
        What was chosen, when the source was an archive with several members.
    """

    document: Any
    label: str
    note: str | None = None


def member_rank(name: str) -> int | None:
    """The rank of an archive member: the first integer in its base name.

    Examples
    --------
    >>> member_rank("dlrm_pytorch_et/dlrm_eg_3.json"), member_rank("worker12_step_5.json"), member_rank("a.json")
    (3, 12, None)
    """
    m = _INT_RE.search(os.path.basename(name))
    return int(m.group(0)) if m else None


def choose_member(names: list[str], label: str, member: str | None = None,
                  rank: int | None = None) -> tuple[str, str | None]:
    """Choose one archive member among ``names`` (JSON members only).

    Returns the member and a note when there was a choice to make.

    Examples
    --------
    >>> choose_member(["d/eg_1.json", "d/eg_0.json"], "a.tar")
    ('d/eg_0.json', 'a.tar holds 2 JSON files; took d/eg_0.json (rank 0); choose with --rank or --member')
    >>> choose_member(["d/eg_1.json", "d/eg_0.json"], "a.tar", rank=1)[0]
    'd/eg_1.json'
    """
    candidates = sorted(n for n in names if n.endswith((".json", ".json.gz")))
    if not candidates:
        raise InputError.single(label, "", "archive holds no .json file")
    if member is not None:
        hits = [n for n in candidates if n == member or os.path.basename(n) == member]
        if not hits:
            raise InputError.single(label, "", f"archive has no member {member!r}; members: "
                                    + ", ".join(candidates))
        return hits[0], None
    if rank is not None:
        hits = [n for n in candidates if member_rank(n) == rank]
        if not hits:
            raise InputError.single(label, "", f"archive has no member for rank {rank}; members: "
                                    + ", ".join(candidates))
        return hits[0], None
    if len(candidates) == 1:
        return candidates[0], None
    ranked = sorted(candidates, key=lambda n: (member_rank(n) is None, member_rank(n) or 0, n))
    pick = ranked[0]
    return pick, (f"{label} holds {len(candidates)} JSON files; took {pick} (rank {member_rank(pick)}); "
                  "choose with --rank or --member")


def _decode_member(data: bytes, label: str) -> Any:
    if data[:2] == b"\x1f\x8b":
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError.single(label, "", f"broken gzip data: {exc}") from None
    return decode_json(data, label)


def read_json_source(source: Source, member: str | None = None, rank: int | None = None) -> LoadedSource:
    """Read a JSON document from a file, a ``.gz`` file, a tar/zip archive, or take a mapping as is.

    Parameters
    ----------
    source : path or decoded JSON
        A file path, or an already-decoded document (a mapping or list, returned unchanged).
    member, rank : optional
        Which member of an archive to read (see the module docstring).

    Raises
    ------
    InputError
        The file is missing, not JSON, a broken archive, or has no such member.
    """
    if not isinstance(source, (str, os.PathLike)):
        return LoadedSource(source, "<document>")
    path = os.fspath(source)
    if os.path.isfile(path) and (path.endswith((".tar", ".tar.gz", ".tgz")) or _is_tar(path)):
        try:
            with tarfile.open(path) as tar:
                names = [m.name for m in tar.getmembers() if m.isfile()]
                name, note = choose_member(names, path, member, rank)
                fh = tar.extractfile(name)
                data = fh.read() if fh is not None else b""
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InputError.single(path, "", f"broken tar archive: {exc}") from None
        label = f"{path}:{name}"
        return LoadedSource(_decode_member(data, label), label, note)
    if os.path.isfile(path) and path.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                name, note = choose_member(zf.namelist(), path, member, rank)
                data = zf.read(name)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise InputError.single(path, "", f"broken zip archive: {exc}") from None
        label = f"{path}:{name}"
        return LoadedSource(_decode_member(data, label), label, note)
    return LoadedSource(decode_json(read_bytes(path), path), path)


def _is_tar(path: str) -> bool:
    if path.endswith((".json", ".json.gz")):
        return False
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False
