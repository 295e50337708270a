"""What a result row was produced with: the code version, solver library versions, the machine.

The code version is the git commit of the tierplan checkout, with ``-dirty-<hash>`` appended when
the files that decide results (:data:`CODE_PATHS`: the solver, the formulations, the instances,
the packaging) differ from it, tracked or untracked: the hash covers ``git diff HEAD`` and the
untracked files there, so two different uncommitted states never share a version, while edits to
results, docs or tests do not change it. Outside a git checkout it is ``v<package version>``.

Examples
--------
>>> code_version().startswith(("v", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"))
True
>>> "python=" in library_versions()
True
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from solver import __version__

#: Paths of the checkout whose content decides a run's result.
CODE_PATHS: tuple[str, ...] = ("solver", "formulations", "instances", "pyproject.toml")

#: Distributions whose versions are recorded with every row (those that decide a planner's answer).
LIBRARIES: tuple[str, ...] = ("numpy", "networkx", "msgspec", "ortools", "highspy", "pulp")


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def code_version(root: str | os.PathLike[str] | None = None) -> str:
    """The tierplan commit (``<sha12>``, ``<sha12>-dirty-<hash8>``) or ``v<version>`` without git.

    Parameters
    ----------
    root : path, optional
        A folder inside the checkout (default: the folder holding the ``solver`` package).

    Examples
    --------
    >>> import tempfile
    >>> code_version(tempfile.mkdtemp()).startswith("v")
    True
    """
    here = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    sha = _git(["rev-parse", "HEAD"], here)
    if not sha:
        return f"v{__version__}"
    head = sha.decode().strip()[:12]
    top = _git(["rev-parse", "--show-toplevel"], here)
    root_dir = Path(top.decode().strip()) if top else here
    diff = _git(["diff", "HEAD", "--no-ext-diff", "--binary", "--", *CODE_PATHS], root_dir) or b""
    others = _git(["ls-files", "--others", "--exclude-standard", "-z", "--", *CODE_PATHS], root_dir) or b""
    if not diff and not others:
        return head
    h = hashlib.sha256(diff)
    for name in sorted(n for n in others.split(b"\0") if n):
        h.update(b"\0" + name + b"\0")
        try:
            h.update((root_dir / name.decode()).read_bytes())
        except OSError:
            pass
    return f"{head}-dirty-{h.hexdigest()[:8]}"


def library_versions(libraries: tuple[str, ...] = LIBRARIES) -> str:
    """``name=version`` pairs joined by ``;``: tierplan, Python, then each installed library.

    Examples
    --------
    >>> library_versions(("numpy",)).split(";")[1].startswith("python=")
    True
    """
    parts = [f"tierplan={__version__}", f"python={platform.python_version()}"]
    for name in libraries:
        try:
            parts.append(f"{name.lower()}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ";".join(parts)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def machine() -> str:
    """A one-line description of this machine: OS, architecture, CPU model, cores.

    Examples
    --------
    >>> "cpus" in machine()
    True
    """
    cpu = _cpu_model()
    return ", ".join(p for p in (f"{platform.system()} {platform.machine()}", cpu,
                                 f"{os.cpu_count() or 1} cpus") if p)


def host() -> str:
    """This machine's host name.

    Examples
    --------
    >>> bool(host())
    True
    """
    return socket.gethostname() or "unknown"
