"""Hardware presets: the ``tierplan.hardware/1`` TOML files shipped in ``instances/hardware/``.

Examples
--------
>>> "laptop-sized" in list_hardware_presets()
True
>>> hardware_preset_path("laptop-sized").name
'laptop-sized.toml'
"""

from __future__ import annotations

import os
from pathlib import Path

from solver.errors import InputError

_SUFFIXES = (".toml", ".json")


def instances_dir() -> Path:
    """The project's ``instances/`` folder (``$TIERPLAN_INSTANCES`` overrides it).

    Examples
    --------
    >>> instances_dir().name
    'instances'
    """
    env = os.environ.get("TIERPLAN_INSTANCES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "instances"


def hardware_dir() -> Path:
    """Folder holding the hardware presets."""
    return instances_dir() / "hardware"


def list_hardware_presets() -> list[str]:
    """Names of the hardware presets, sorted.

    Examples
    --------
    >>> {"ascend-910b", "h100-pcie", "gh200"} <= set(list_hardware_presets())
    True
    """
    folder = hardware_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(p.suffix)] for p in folder.iterdir() if p.suffix in _SUFFIXES)


def hardware_preset_path(name: str, where: str = "hardware") -> Path:
    """Path of the preset named ``name``.

    Parameters
    ----------
    name : str
        Preset name, e.g. ``"ascend-910b"``.
    where : str
        Label for the error message (e.g. the option ``--hardware``).

    Raises
    ------
    InputError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> hardware_preset_path("nope")
    Traceback (most recent call last):
    ...
    solver.errors.InputError: hardware: unknown hardware preset 'nope'; valid presets: ...
    """
    for suffix in _SUFFIXES:
        p = hardware_dir() / f"{name}{suffix}"
        if p.is_file() and "/" not in name and "\\" not in name:
            return p
    valid = ", ".join(list_hardware_presets()) or f"none found in {hardware_dir()}"
    raise InputError.single(where, "", f"unknown hardware preset {name!r}; valid presets: {valid}")


def resolve_hardware(spec: str | os.PathLike[str], where: str = "hardware") -> Path:
    """A hardware file from a preset name or a path.

    A value that names an existing file, or contains a path separator or a file
    suffix, is a path; anything else is a preset name.

    Examples
    --------
    >>> resolve_hardware("gh200").name
    'gh200.toml'
    """
    text = os.fspath(spec)
    p = Path(text)
    if p.exists() or os.sep in text or "/" in text or text.endswith((".toml", ".json", ".gz")):
        if not p.exists():
            raise InputError.single(text, "", "hardware file not found")
        return p   # reading it says what is wrong with a path that is not a regular file
    return hardware_preset_path(text, where)
