"""Structure-aware fuzz tests of every loader and every file-reading command (issue 19, section 4).

Hypothesis strategies start from valid documents (the golden cases, a committed hardware TOML, a
suite, a results CSV, importer sources) and damage them: delete a key, retype a value, duplicate a
list entry, put in extreme numbers, 100,000-deep nesting, unicode and terminal escape sequences;
then, at the byte level, truncate the file, empty it, break its UTF-8, gzip it, or corrupt the gzip.

The only outcomes allowed are:

* a loader returns, or raises :class:`solver.errors.InputError` (one line per problem, each naming
  a file);
* a command exits 0 or 1 with valid output (``--json`` parses, every output file exists and loads),
  or exits 2 with one ``error: ...`` line per problem naming the file or option at fault.

No traceback, no other exception, no raw terminal escape sequence on the terminal.

Every crash the fuzzer found is kept in ``tests/fuzz_corpus/`` (one damaged file each, named
``ROLE--what.EXT``) and replayed by :func:`test_corpus_file_loader` and
:func:`test_corpus_file_commands`; crashes that need a special file or option are the cases of
:func:`test_regression_option_cases` and the special-file tests. Examples are derandomized, so a
run is deterministic. Set ``TIERPLAN_FUZZ_EXAMPLES=N`` to run N examples per test (a deeper
local hunt).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.cli import main
from solver.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"

#: examples per fuzz test; small so that the file runs in well under a minute on two slow cores
EXAMPLES = int(os.environ.get("TIERPLAN_FUZZ_EXAMPLES", "0")) or None


def fuzz_settings(n: int) -> settings:
    """Deterministic, no example database (nothing written into the tree), no deadline."""
    return settings(max_examples=EXAMPLES or n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


# --- seeds: valid documents -------------------------------------------------------------------

GOLDEN_CASES = ("basic_keep", "multi_hop", "recompute", "unit_strings", "two_links", "channel",
                "updates_stale", "latency", "zero_duration_workspace")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


TRACES = [_read_json(GOLDEN / c / "trace.json") for c in GOLDEN_CASES]
HARDWARES = [_read_json(GOLDEN / c / "hardware.json") for c in GOLDEN_CASES]
SCHEDULES = [_read_json(GOLDEN / c / "schedule.json") for c in GOLDEN_CASES]
TRIPLES = list(zip(TRACES, HARDWARES, SCHEDULES))

LAPTOP_TOML = (ROOT / "instances" / "hardware" / "laptop-sized.toml").read_text(encoding="utf-8")

SUITE = {
    "format": "tierplan.suite/1",
    "name": "fz",
    "description": "fuzz seed",
    "budgets": [1.0, "1 KiB", {"fraction": 0.9, "tiers": {"DDR": "2 KiB"}}],
    "bench": {"methods": ["greedy"], "time_limit": 5},
    "hardware": {"tiny": {"compute_tier": "HBM", "tiers": [{"name": "HBM", "capacity": "1 MiB"}],
                          "links": []}},
    "instances": [
        {"name": "a", "trace": "trace.json", "hardware": "hardware.json", "budgets": [1.0]},
        {"name": "b", "hardware": "tiny", "recipe": {"kind": "chain", "seed": 1,
                                                     "options": {"layers": 3, "skip": 2}}},
        {"name": "c", "hardware": "hardware.json",
         "import": {"format": "networkx", "path": "graph.json", "optional": True,
                    "options": {"time_unit": "1us"}}},
    ],
}

#: a suite that `bench` runs in about a second: one instance, one budget, one cheap method
BENCH_SUITE = {
    "format": "tierplan.suite/1", "name": "fz", "budgets": [1.0],
    "bench": {"methods": ["greedy"], "time_limit": 5},
    "instances": [{"name": "a", "trace": "trace.json", "hardware": "hardware.json"}],
}

NETWORKX = {"directed": True, "graph": {"order": [0, 1, 2]}, "nodes": [
    {"id": 0, "cost_cpu": 1, "cost_ram": 10}, {"id": 1, "cost_cpu": 2, "cost_ram": 20, "backward": True},
    {"id": 2, "cost_cpu": 3, "cost_ram": 30}],
    "links": [{"source": 0, "target": 2}, {"source": 0, "target": 1}, {"source": 1, "target": 2}]}


def _et_doc() -> dict[str, Any]:
    """A small schema-1.1 PyTorch Execution Trace (as tests/test_import_pytorch_et.py builds them)."""
    nodes: list[dict[str, Any]] = [
        {"id": 1, "name": "[pytorch|profiler|execution_trace|process]", "ctrl_deps": 1},
        {"id": 2, "name": "[pytorch|profiler|execution_trace|thread]", "ctrl_deps": 1}]

    def t(storage: int, numel: int = 256) -> list[Any]:
        return [storage + 1000, storage, 0, numel, 4, "cuda:0"]

    def block(ts: list[list[Any]]) -> dict[str, Any]:
        return {"values": ts, "shapes": [[x[3]] for x in ts], "types": ["Tensor(float)"] * len(ts)}

    for nid, (name, ins, outs, schema) in enumerate([
            ("aten::linear", [t(10), t(11, 64)], [t(12)], ""),
            ("aten::relu", [t(12)], [t(13)], ""),
            ("aten::add_", [t(13), t(10)], [t(13)],
             "aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)"),
            ("aten::sum", [t(13)], [t(14, 1)], "")], start=3):
        nodes.append({"id": nid, "name": name, "ctrl_deps": 2, "inputs": block(ins), "outputs": block(outs),
                      "attrs": [{"name": "rf_id", "type": "uint64", "value": nid},
                                {"name": "scope", "type": "uint64", "value": 0},
                                {"name": "op_schema", "type": "string", "value": schema}]})
    return {"schema": "1.1.1-chakra.0.0.4", "nodes": nodes}


PYTORCH_ET = _et_doc()


def _csv_seed() -> str:
    """The header and two rows of the committed CI results."""
    lines = (ROOT / "results" / "ci.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(lines[:3])


CSV_SEED = _csv_seed()


# --- damage: tree level -----------------------------------------------------------------------

DEPTH = 100_000
DEEP_LIST = "__fuzz_deep_list__"
DEEP_OBJECT = "__fuzz_deep_object__"

EXTREME_NUMBERS: list[Any] = [
    1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-308, -0.0, 0, -1, 10**400, -(10**400),
    2**63, 2**63 - 1, 2**64, -(2**63) - 1, 2**53 + 1, float("inf"), float("-inf"), float("nan")]
EXTREME_STRINGS = [
    "NaN", "nan", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e400", "1" * 400, "1e30 GiB",
    "1e308 B", "-1e308 B", "1e308 s", "1e3000 us", "nan GiB", "inf GB/s", "nan ms", "-0 s", "1e-400 s",
    "1" * 400 + " GiB", "9223372036854775808", "18446744073709551616 B", "1e308 GB/s", "0 GB/s",
    "0x10", "1_000", "5 XB", "GiB", "", " ", "-", "1e", "1.5.5 KiB"]
UNICODE_STRINGS = [
    "\x1b[2J", "\x1b]0;owned\x07", "a\x1b[31mred\x1b[0m", "\x9b2J", "é", "💥", "\u202eevil", "\x00",
    "\ud800", "名前", "a\nb", "\r", "\t", "  x  ", "\ufeff", "x" * 3000, "HBM", "DDR", "x"]

_leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
         | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)
         | st.sampled_from(EXTREME_NUMBERS) | st.sampled_from(EXTREME_STRINGS + UNICODE_STRINGS))
ANY_VALUE = st.recursive(_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c,
                                                                                   max_size=3), max_leaves=5)
RETYPES = st.sampled_from(["str", "int", "float", "bool", "null", "list", "object"])


def _retype(kind: str, old: Any) -> Any:
    return {"str": str(old), "int": 7, "float": 0.5, "bool": True, "null": None, "list": [old],
            "object": {"value": old}}[kind]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


#: mutation kinds, weighted by repetition (deep nesting is rare: it would hide everything else)
MUTATIONS = ("delete",) * 3 + ("retype",) * 3 + ("value",) * 2 + ("duplicate",) * 2 + ("extreme",) * 4 \
    + ("string",) * 3 + ("rename", "deep")


def _scalar_paths(doc: Any, types: tuple[type, ...]) -> list[tuple[Any, ...]]:
    return [p for p in _paths(doc) if p and isinstance(_get(doc, p), types)]


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_mutations: int = 3) -> Any:
    """``doc`` with 1 to ``max_mutations`` structure-aware mutations at random places."""
    doc = copy.deepcopy(doc)
    deep = False
    for _ in range(draw(st.integers(1, max_mutations))):
        op = draw(st.sampled_from(MUTATIONS))
        # extreme numbers mostly replace numbers, unicode mostly replaces strings (ids, names)
        targets = {"extreme": _scalar_paths(doc, (int, float, str)), "string": _scalar_paths(doc, (str,))}.get(op)
        if not targets or not draw(st.integers(0, 3)):
            targets = list(_paths(doc))
        path = draw(st.sampled_from(targets))
        node = _get(doc, path)
        if op == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif op == "retype":
            doc = _put(doc, path, _retype(draw(RETYPES), node))
        elif op == "value":
            doc = _put(doc, path, draw(ANY_VALUE))
        elif op == "duplicate":
            if isinstance(node, list) and node:
                node.append(copy.deepcopy(draw(st.sampled_from(node))))
            elif path and isinstance(_get(doc, path[:-1]), list):
                _get(doc, path[:-1]).insert(path[-1], copy.deepcopy(node))
        elif op == "extreme":
            doc = _put(doc, path, draw(st.sampled_from(EXTREME_NUMBERS + EXTREME_STRINGS)))
        elif op == "string":
            doc = _put(doc, path, draw(st.sampled_from(UNICODE_STRINGS)))
        elif op == "rename" and path and isinstance(_get(doc, path[:-1]), dict):
            parent = _get(doc, path[:-1])
            parent[draw(st.sampled_from(UNICODE_STRINGS))] = parent.pop(path[-1])
        elif op == "deep" and not deep:
            deep = True
            doc = _put(doc, path, draw(st.sampled_from([DEEP_LIST, DEEP_OBJECT])))
    return doc


# --- damage: serialization and byte level -------------------------------------------------------


def _deep(sentinel: str, toml: bool) -> str:
    if sentinel == DEEP_LIST:
        return "[" * DEPTH + "]" * DEPTH
    return ("{a = " if toml else '{"a": ') * DEPTH + "1" + "}" * DEPTH


def to_json(doc: Any) -> bytes:
    """JSON text (Python's encoder: big ints exact, NaN/Infinity as the non-JSON tokens)."""
    text = json.dumps(doc, indent=1)
    for s in (DEEP_LIST, DEEP_OBJECT):
        text = text.replace(json.dumps(s), _deep(s, toml=False))
    return text.encode("utf-8")


def _toml_value(v: Any) -> str:
    if v is None:
        return '"null"'                  # TOML has no null
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str):
        return _deep(v, toml=True) if v in (DEEP_LIST, DEEP_OBJECT) else json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: Any) -> bytes:
    """TOML text: one ``key = value`` line per top-level key, inline tables below."""
    if not isinstance(doc, dict):
        doc = {"value": doc}
    return "".join(f"{json.dumps(str(k))} = {_toml_value(v)}\n" for k, v in doc.items()).encode(
        "utf-8", "surrogatepass")


#: byte-level damage, one file in four (the rest test the structure, not the parser)
BYTE_DAMAGE = ("none",) * 27 + ("truncate", "empty", "bad-utf8", "bom", "gzip", "gzip-corrupt", "gzip-truncate",
                                "gzip-magic", "nul")


@st.composite
def damaged_bytes(draw: st.DrawFn, data: bytes) -> tuple[bytes, bool]:
    """(damaged data, gzip'd?)"""
    how = draw(st.sampled_from(BYTE_DAMAGE))
    if how == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))], False
    if how == "empty":
        return b"", False
    if how == "bad-utf8":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])) + data[at:], False
    if how == "bom":
        return b"\xef\xbb\xbf" + data, False
    if how == "nul":
        return data.replace(b'"', b'"\x00', 1), False
    packed = gzip.compress(data, mtime=0)
    if how == "gzip":
        return packed, True
    if how == "gzip-corrupt":
        at = draw(st.integers(10, len(packed) - 1))
        return packed[:at] + bytes([packed[at] ^ 0xFF]) + packed[at + 1:], True
    if how == "gzip-truncate":
        return packed[: draw(st.integers(2, len(packed) - 1))], True
    if how == "gzip-magic":
        return b"\x1f\x8b" + data, False
    return data, False


@st.composite
def damaged_document(draw: st.DrawFn, seeds: Sequence[Any], fmt: str = "json") -> tuple[str, bytes]:
    """(file suffix, bytes) of a damaged document of the given seeds."""
    doc = draw(st.sampled_from(list(seeds)))
    if draw(st.integers(0, 9)):
        doc = draw(mutated(doc))
    data = to_json(doc) if fmt == "json" else to_toml(doc)
    data, packed = draw(damaged_bytes(data))
    suffix = f".{fmt}" + (".gz" if packed or draw(st.integers(0, 19)) == 0 else "")
    return suffix, data


@st.composite
def damaged_text(draw: st.DrawFn, text: str, suffix: str) -> tuple[str, bytes]:
    """Line- and cell-level damage of a text file (the results CSV)."""
    rows = list(csv.reader(io.StringIO(text)))
    for _ in range(draw(st.integers(1, 3))):
        r = draw(st.integers(0, len(rows) - 1))
        op = draw(st.sampled_from(["cell", "cell", "delete-row", "duplicate-row", "drop-cell", "add-cell"]))
        if op == "cell" and rows[r]:
            c = draw(st.integers(0, len(rows[r]) - 1))
            rows[r][c] = draw(st.sampled_from(EXTREME_STRINGS + UNICODE_STRINGS + ["true", "false", "{", "{}"]))
        elif op == "delete-row" and len(rows) > 1:
            del rows[r]
        elif op == "duplicate-row":
            rows.insert(r, list(rows[r]))
        elif op == "drop-cell" and rows[r]:
            rows[r].pop()
        elif op == "add-cell":
            rows[r].append("x")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    data, packed = draw(damaged_bytes(buf.getvalue().encode("utf-8", "surrogatepass")))
    return suffix + (".gz" if packed else ""), data


# --- running loaders and commands -----------------------------------------------------------------


@pytest.fixture(scope="module")
def workroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@contextlib.contextmanager
def scratch(root: Path) -> Iterator[Path]:
    """A fresh folder per example (removed after it)."""
    d = Path(tempfile.mkdtemp(dir=root))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write(folder: Path, stem: str, suffix: str, data: bytes | str | Any) -> str:
    """Write ``data`` (bytes, text, or a document to encode by suffix) to ``folder/stem+suffix``."""
    p = folder / f"{stem}{suffix}"
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes):
        data = to_toml(data) if ".toml" in suffix else to_json(data)
        if suffix.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
    p.write_bytes(data)
    return str(p)


def check_problems(exc: InputError) -> None:
    """An InputError holds at least one problem, each one line naming a file."""
    assert exc.problems, "an InputError without problems"
    for prob in exc.problems:
        assert prob.file, f"problem without a file: {prob!r}"
        assert "\n" not in str(prob) and "\r" not in str(prob), f"a problem spans lines: {str(prob)!r}"


def load_only_input_error(loader: Callable[[str], Any], path: str) -> Any:
    """Run a loader; only InputError may escape (checked), any other exception fails the test."""
    try:
        return loader(path)
    except InputError as exc:
        check_problems(exc)
        return None


class _Stream(io.TextIOWrapper):
    """A text stream with a ``.buffer`` (commands write JSON to ``sys.stdout.buffer``), UTF-8 strict."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``tierplan ARGV`` in-process: (exit status, stdout, stderr). Exceptions propagate."""
    out, err = _Stream(), _Stream()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:        # argparse
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return rc, out.text(), err.text()


_ARGPARSE_ERROR = re.compile(r"^tierplan( [\w-]+)*: error: ")
_NAMES_OPTION = re.compile(r"^error: --[\w-]+: ")


def check_outcome(argv: Sequence[str], rc: int, out: str, err: str, folder: Path | None,
                  outputs: Sequence[tuple[str, Callable[[str], Any]]] = (), outputs_on: Sequence[int] = (0, 1),
                  json_out: bool = False) -> None:
    """The only outcomes allowed: 0/1 with valid output, 2 with one ``error:`` line per problem."""
    shown = f"tierplan {' '.join(argv)!r}\nexit {rc}\nstdout: {out[-2000:]!r}\nstderr: {err[-2000:]!r}"
    assert rc in (0, 1, 2), shown
    assert "Traceback" not in err and "Traceback" not in out, shown
    assert not re.search("[\x1b\x9b]", out + err), "raw terminal escape on the terminal\n" + shown
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert lines, "exit 2 without a message\n" + shown
        if any(_ARGPARSE_ERROR.match(ln) for ln in lines):        # argparse's own usage + one error line
            assert _ARGPARSE_ERROR.match(lines[-1]), shown
            return
        errors = [ln for ln in lines if not ln.startswith("warning: ")]
        assert errors, "exit 2 with only warnings\n" + shown
        names = [a for a in argv if a.startswith("--") or os.sep in a]
        if folder is not None:
            names.append(str(folder))
        for ln in errors:
            assert ln.startswith("error: "), "a stderr line of exit 2 is not 'error: ...'\n" + shown
            assert any(n in ln for n in names) or _NAMES_OPTION.match(ln), \
                "an error line names no file or option\n" + shown
        return
    if json_out:
        try:
            json.loads(out)
        except ValueError as exc:  # pragma: no cover - the assertion reports it
            raise AssertionError(f"--json output is not JSON ({exc})\n{shown}") from None
    if rc in outputs_on:
        for path, loader in outputs:
            assert os.path.isfile(path), f"output {path} missing\n{shown}"
            loader(path)


def _load_trace(p: str) -> Any:
    from solver.formats import load_trace
    return load_trace(p)


def _load_hardware(p: str) -> Any:
    from solver.formats import load_hardware
    return load_hardware(p)


def _load_schedule(p: str) -> Any:
    from solver.formats import load_schedule
    return load_schedule(p)


def _load_suite(p: str) -> Any:
    from solver.suites import load_suite
    return load_suite(p)


def _read_csv(p: str) -> Any:
    from solver.bench.rows import read_csv
    return read_csv(p)


def _import(fmt: str) -> Callable[[str], Any]:
    def load(p: str) -> Any:
        from solver.importers.registry import get_importer
        return get_importer(fmt).load()(p)
    return load


def _timeline(p: str) -> None:
    with open(p, encoding="utf-8") as fh:
        assert fh.readline().strip() == "action,kind,stream,start,end"


def _figure(p: str) -> None:
    assert os.path.getsize(p) > 100


# --- fuzz: loaders in-process -------------------------------------------------------------------------


@fuzz_settings(40)
@given(case=damaged_document(TRACES))
def test_fuzz_load_trace(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        load_only_input_error(_load_trace, write(d, "trace", *case))


@fuzz_settings(40)
@given(case=damaged_document(HARDWARES) | damaged_document(HARDWARES, "toml"))
def test_fuzz_load_hardware(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        load_only_input_error(_load_hardware, write(d, "hardware", *case))


@fuzz_settings(30)
@given(data=st.data())
def test_fuzz_load_hardware_toml_text(workroot: Path, data: st.DataObject) -> None:
    """The committed laptop-sized.toml, damaged as text (comments, tables, arrays of tables)."""
    import tomllib
    doc = tomllib.loads(LAPTOP_TOML)
    if data.draw(st.booleans()):
        raw = data.draw(damaged_bytes(to_toml(data.draw(mutated(doc)))))[0]
    else:
        text = LAPTOP_TOML.encode()
        at = data.draw(st.integers(0, len(text)))
        insert = data.draw(st.sampled_from([b"", b"[compute]\n", b"\n[[tiers]]\n", b"=", b'"', b"\xff",
                                             b"1e400", b"[" * 2000, b"\x00", b"\n" + b"x = 1\n" * 2]))
        raw = text[:at] + insert + text[at + data.draw(st.integers(0, 20)):]
    with scratch(workroot) as d:
        load_only_input_error(_load_hardware, write(d, "hardware", ".toml", raw))


@fuzz_settings(40)
@given(case=damaged_document(SCHEDULES))
def test_fuzz_load_schedule(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        load_only_input_error(_load_schedule, write(d, "schedule", *case))


def _suite_folder(d: Path, trace: Any = None, hardware: Any = None) -> None:
    write(d, "trace", ".json", TRACES[0] if trace is None else trace)
    write(d, "hardware", ".json", HARDWARES[0] if hardware is None else hardware)
    write(d, "graph", ".json", NETWORKX)


@fuzz_settings(35)
@given(case=damaged_document([SUITE], "toml") | damaged_document([SUITE], "json"))
def test_fuzz_load_suite(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        _suite_folder(d)
        load_only_input_error(_load_suite, write(d, "suite", *case))


@fuzz_settings(40)
@given(case=damaged_text(CSV_SEED, ".csv"))
def test_fuzz_read_results_csv(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        load_only_input_error(_read_csv, write(d, "baseline", *case))


@fuzz_settings(35)
@given(case=damaged_document([NETWORKX]))
def test_fuzz_import_networkx_loader(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        load_only_input_error(_import("networkx"), write(d, "graph", *case))


@fuzz_settings(35)
@given(case=damaged_document([PYTORCH_ET]))
def test_fuzz_import_pytorch_et_loader(workroot: Path, case: tuple[str, bytes]) -> None:
    with scratch(workroot) as d:
        load_only_input_error(_import("pytorch-et"), write(d, "et", *case))


# --- fuzz: commands in-process --------------------------------------------------------------------------


@st.composite
def damaged_instance(draw: st.DrawFn, roles: Sequence[str] = ("trace", "hardware", "schedule")
                     ) -> tuple[str, dict[str, tuple[str, Any]]]:
    """One golden triple with one of its files damaged: (role damaged, {role: (suffix, data)})."""
    trace, hardware, schedule = draw(st.sampled_from(TRIPLES))
    files: dict[str, tuple[str, Any]] = {"trace": (".json", trace), "hardware": (".json", hardware),
                                         "schedule": (".json", schedule)}
    role = draw(st.sampled_from(list(roles)))
    fmt = "toml" if role == "hardware" and draw(st.booleans()) else "json"
    files[role] = draw(damaged_document([files[role][1]], fmt))
    return role, files


def _write_instance(d: Path, files: dict[str, tuple[str, Any]]) -> dict[str, str]:
    return {role: write(d, role, suffix, data) for role, (suffix, data) in files.items()}


CAPACITY_ITEMS = st.sampled_from([[], [], [], ["--capacity", "HBM=1e30GiB"], ["--capacity", "HBM=1e400"],
                                  ["--capacity", "HBM=" + "9" * 400], ["--capacity", "HBM=nan"],
                                  ["--capacity", "\x1b[2J=1"], ["--capacity", "HBM=-0"]])


@fuzz_settings(40)
@given(case=damaged_instance(), as_json=st.booleans(), timeline=st.booleans(), caps=CAPACITY_ITEMS)
def test_fuzz_cli_validate(workroot: Path, case: Any, as_json: bool, timeline: bool, caps: list[str]) -> None:
    with scratch(workroot) as d:
        p = _write_instance(d, case[1])
        argv = ["validate", p["trace"], p["hardware"], p["schedule"], *caps]
        outputs = []
        if as_json:
            argv.append("--json")
        if timeline:
            argv += ["--timeline", str(d / "timeline.csv")]
            outputs.append((str(d / "timeline.csv"), _timeline))
        check_outcome(argv, *run_cli(argv), d, outputs, json_out=as_json)


def _schedule_is_valid(trace: str, hardware: str) -> Callable[[str], Any]:
    def check(path: str) -> None:
        _load_schedule(path)
        rc, out, err = run_cli(["validate", trace, hardware, path])
        assert rc == 0, f"solve wrote a schedule that validate rejects (exit {rc}): {out}{err}"
    return check


@fuzz_settings(40)
@given(case=damaged_instance(("trace", "hardware")), method=st.sampled_from(["greedy", "belady"]),
       as_json=st.booleans(),
       extra=st.sampled_from([[], [], ["--budget", "0.5"], ["--budget", "1e308"], ["--budget", "nan"],
                              ["--no-recompute"], ["--time-limit", "1e308"], ["--capacity", "HBM=1e30 GiB"]]))
def test_fuzz_cli_solve(workroot: Path, case: Any, method: str, as_json: bool, extra: list[str]) -> None:
    with scratch(workroot) as d:
        p = _write_instance(d, case[1])
        out_path = str(d / "out.json")
        argv = ["solve", p["trace"], "-H", p["hardware"], "-m", method, "-o", out_path, *extra]
        if as_json:
            argv.append("--json")
        # the written schedule validates against the files it was planned for (an explicit capacity
        # override raises a tier for `solve` only, so only then is the schedule not rechecked)
        check = _schedule_is_valid(p["trace"], p["hardware"]) if "--capacity" not in extra else _load_schedule
        check_outcome(argv, *run_cli(argv), d, [(out_path, check)], outputs_on=(0,), json_out=as_json)


@fuzz_settings(30)
@given(case=damaged_instance(("trace", "hardware")), as_json=st.booleans())
def test_fuzz_cli_bound(workroot: Path, case: Any, as_json: bool) -> None:
    with scratch(workroot) as d:
        p = _write_instance(d, case[1])
        argv = ["bound", p["trace"], "-H", p["hardware"], "--time-limit", "5"] + (["--json"] if as_json else [])
        check_outcome(argv, *run_cli(argv), d, json_out=as_json)


@fuzz_settings(40)
@given(case=damaged_instance(("trace", "hardware")), as_json=st.booleans(), with_hw=st.booleans(),
       top=st.sampled_from([[], ["--top", "0"], ["--top", "-3"], ["--top", "100000"]]))
def test_fuzz_cli_inspect(workroot: Path, case: Any, as_json: bool, with_hw: bool, top: list[str]) -> None:
    with scratch(workroot) as d:
        p = _write_instance(d, case[1])
        argv = ["inspect", p["trace"], *top] + (["--hardware", p["hardware"]] if with_hw else []) \
            + (["--json"] if as_json else [])
        check_outcome(argv, *run_cli(argv), d, json_out=as_json)


@fuzz_settings(20)
@given(case=damaged_instance(), fmt=st.sampled_from(["svg", "png"]),
       title=st.sampled_from([[], ["--title", "\x1b[2J💥"], ["--title", "$\\frac{$"]]))
def test_fuzz_cli_plot(workroot: Path, case: Any, fmt: str, title: list[str]) -> None:
    with scratch(workroot) as d:
        p = _write_instance(d, case[1])
        out_path = str(d / f"plot.{fmt}")
        argv = ["plot", p["trace"], p["hardware"], p["schedule"], "-o", out_path, "--dpi", "10", *title]
        check_outcome(argv, *run_cli(argv), d, [(out_path, _figure)])


@fuzz_settings(12)
@given(what=st.sampled_from(["suite", "suite", "trace", "hardware"]), data=st.data())
def test_fuzz_cli_bench(workroot: Path, what: str, data: st.DataObject) -> None:
    """Mostly damaged suites (refused before any run); the one-run suite when it survives."""
    with scratch(workroot) as d:
        trace = hardware = None
        if what == "trace":
            trace = data.draw(mutated(TRACES[0], 1))
        elif what == "hardware":
            hardware = data.draw(mutated(HARDWARES[0], 1))
        _suite_folder(d, trace, hardware)
        suite = data.draw(damaged_document([BENCH_SUITE], "toml")) if what == "suite" else (".toml", BENCH_SUITE)
        path = write(d, "suite", *suite)
        argv = ["bench", path, "--out", str(d / "res"), "--no-plots", "--progress", "none", "--time-limit", "5"]
        before = set(os.listdir(d))
        rc, out, err = run_cli(argv)
        check_outcome(argv, rc, out, err, d)
        if rc in (0, 1):
            tables = list((d / "res").glob("*.csv"))
            assert tables, f"bench exit {rc} wrote no results table\n{err}"
            for table in tables:
                _read_csv(str(table))
        assert set(os.listdir(d)) <= before | {"res"}, "bench wrote outside --out"


@fuzz_settings(40)
@given(fmt=st.sampled_from(["networkx", "pytorch-et"]), data=st.data(),
       extra=st.sampled_from([[], [], ["--name", "\x1b[2J"], ["--initial-tier", "\x1b[2J"], ["--quiet"]]))
def test_fuzz_cli_import(workroot: Path, fmt: str, data: st.DataObject, extra: list[str]) -> None:
    seed = NETWORKX if fmt == "networkx" else PYTORCH_ET
    case = data.draw(damaged_document([seed]))
    with scratch(workroot) as d:
        src = write(d, "source", *case)
        out_path = str(d / "out.json")
        argv = ["import", fmt, src, "-o", out_path, *extra]
        check_outcome(argv, *run_cli(argv), d, [(out_path, _load_trace)], outputs_on=(0,))


GENERATE_VALUES = st.sampled_from(["0", "-1", "1e308", "-1e308", "nan", "inf", "1e30 GiB", "9" * 400, "2e-324",
                                   "abc", "", "\x1b[2J", "1 KiB", "1e308 s", "0.5", "1.5", "-0.0"])
GENERATE_OPTIONS = {
    "random": ["--tensor-bytes", "--op-time", "--jitter", "--pressure", "--update-prob", "--workspace-prob",
               "--nonrecomputable-prob", "--seed", "--initial-tier", "--compute-tier", "--name", "--indent"],
    "chain": ["--activation-bytes", "--weight-bytes", "--op-time", "--jitter", "--seed", "--weights-tier",
              "--compute-tier", "--name", "--indent"],
}


@fuzz_settings(35)
@given(kind=st.sampled_from(sorted(GENERATE_OPTIONS)), data=st.data())
def test_fuzz_cli_generate_options(workroot: Path, kind: str, data: st.DataObject) -> None:
    """Extreme option values (counts kept small: a huge op count is a long run, not a crash)."""
    with scratch(workroot) as d:
        argv = ["generate", kind, "-o", str(d / "g.json"), "--quiet"]
        argv += ["--ops", "6"] if kind == "random" else ["--layers", "3"]
        for opt in data.draw(st.lists(st.sampled_from(GENERATE_OPTIONS[kind]), min_size=1, max_size=3,
                                      unique=True)):
            argv += [opt, data.draw(GENERATE_VALUES)]
        if data.draw(st.booleans()):
            argv += ["--hardware", write(d, "hardware", *data.draw(damaged_document(HARDWARES[:3])))]
        check_outcome(argv, *run_cli(argv), d, [(str(d / "g.json"), _load_trace)], outputs_on=(0,))


# --- the corpus: every crash the fuzzer found, replayed ---------------------------------------------

CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir() if "--" in p.name) if CORPUS.is_dir() else []
BASIC = GOLDEN / "basic_keep"

LOADERS: dict[str, Callable[[str], Any]] = {
    "trace": _load_trace, "hardware": _load_hardware, "schedule": _load_schedule, "suite": _load_suite,
    "csv": _read_csv, "networkx": _import("networkx"), "pytorch-et": _import("pytorch-et"),
}


def _corpus_copy(name: str, d: Path) -> str:
    """Copy a corpus file into ``d`` beside the files a suite refers to."""
    _suite_folder(d, _read_json(BASIC / "trace.json"), _read_json(BASIC / "hardware.json"))
    shutil.copy(CORPUS / name, d / name)
    return str(d / name)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS_FILES) >= 20
    assert {n.split("--")[0] for n in CORPUS_FILES} <= set(LOADERS)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_loader(tmp_path: Path, name: str) -> None:
    """Each corpus file through its loader: a result or InputError, nothing else."""
    load_only_input_error(LOADERS[name.split("--")[0]], _corpus_copy(name, tmp_path))


def _commands(role: str, f: str, d: Path) -> list[tuple[list[str], list[tuple[str, Callable[[str], Any]]], bool]]:
    """(argv, outputs, --json) of every command that reads a file of this role."""
    t, h, s = (str(BASIC / n) for n in ("trace.json", "hardware.json", "schedule.json"))
    out = str(d / "out.json")
    if role == "trace":
        return [(["validate", f, h, s, "--timeline", str(d / "tl.csv")], [(str(d / "tl.csv"), _timeline)], False),
                (["validate", f, h, s, "--json"], [], True),
                (["solve", f, "-H", h, "-m", "greedy", "-o", out], [(out, _schedule_is_valid(f, h))], False),
                (["solve", f, "-H", h, "-m", "belady", "--json"], [], True),
                (["bound", f, "-H", h, "--time-limit", "5"], [], False),
                (["inspect", f, "--hardware", h], [], False),
                (["inspect", f, "--json"], [], True),
                (["plot", f, h, s, "-o", str(d / "p.svg"), "--dpi", "10"], [(str(d / "p.svg"), _figure)], False)]
    if role == "hardware":
        return [(["validate", t, f, s], [], False),
                (["solve", t, "-H", f, "-m", "greedy", "-o", out], [(out, _schedule_is_valid(t, f))], False),
                (["bound", t, "-H", f, "--time-limit", "5", "--json"], [], True),
                (["inspect", t, "--hardware", f], [], False),
                (["generate", "chain", "--layers", "3", "--hardware", f, "-o", out, "--quiet"],
                 [(out, _load_trace)], False)]
    if role == "schedule":
        return [(["validate", t, h, f], [], False), (["validate", t, h, f, "--json"], [], True),
                (["plot", t, h, f, "-o", str(d / "p.svg"), "--dpi", "10"], [(str(d / "p.svg"), _figure)], False)]
    if role == "suite":
        return [(["bench", f, "--out", str(d / "res"), "--no-plots", "--progress", "none", "--time-limit", "5",
                  "--methods", "greedy"], [], False)]
    if role == "csv":
        return [(["bench", str(d / "suite.toml"), "--check", f, "--progress", "none"], [], False)]
    return [(["import", role, f, "-o", out], [(out, _load_trace)], False)]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_commands(tmp_path: Path, name: str) -> None:
    """Each corpus file through every command that reads its kind of file."""
    f = _corpus_copy(name, tmp_path)
    for argv, outputs, as_json in _commands(name.split("--")[0], f, tmp_path):
        on = (0,) if argv[0] in ("solve", "generate", "import") else (0, 1)
        check_outcome(argv, *run_cli(argv), tmp_path, outputs, outputs_on=on, json_out=as_json)


# --- crashes that need an option or a special file -------------------------------------------------

_T, _H, _S = (str(BASIC / n) for n in ("trace.json", "hardware.json", "schedule.json"))

#: (id, argv with {d} for a scratch folder, exit status required or None for any allowed outcome)
OPTION_CASES = [
    ("solve -o a directory", ["solve", _T, "-H", _H, "-o", "{d}"], 2),
    ("validate --timeline a directory", ["validate", _T, _H, _S, "--timeline", "{d}"], 2),
    ("plot -o a directory", ["plot", _T, _H, _S, "-o", "{d}/dir.svg"], 2),
    ("generate -o a directory", ["generate", "chain", "--layers", "3", "-o", "{d}"], 2),
    ("import -o a directory", ["import", "networkx", str(CORPUS / "networkx--cost-ram-1e308.json"), "-o", "{d}"],
     2),
    ("solve -o under /proc", ["solve", _T, "-H", _H, "-o", "/proc/tierplan-fuzz.json"], 2),
    ("bench --out a file", ["bench", "{d}/suite.toml", "--out", "{d}/trace.json", "--no-plots", "--progress",
                            "none", "--time-limit", "5"], 2),
    ("plot --dpi 0", ["plot", _T, _H, _S, "-o", "{d}/p.png", "--dpi", "0"], 2),
    ("plot --dpi -5", ["plot", _T, _H, _S, "-o", "{d}/p.png", "--dpi", "-5"], 2),
    ("plot --dpi 20000", ["plot", _T, _H, _S, "-o", "{d}/p.png", "--dpi", "20000"], 2),
    ("plot --title mathtext", ["plot", _T, _H, _S, "-o", "{d}/p.svg", "--dpi", "10", "--title", "$\\frac{$"], 0),
    ("belady --option window=abc", ["solve", _T, "-H", _H, "-m", "belady", "--option", "window=abc"], 2),
    ("solve --budget 1e308", ["solve", _T, "-H", _H, "--budget", "1e308"], 2),
    ("solve --budget 1e20", ["solve", _T, "-H", _H, "--budget", "1e20"], 2),
    ("solve --capacity HBM=1e30GiB", ["solve", _T, "-H", _H, "--capacity", "HBM=1e30GiB"], 2),
    ("validate --capacity HBM=1e400", ["validate", _T, _H, _S, "--capacity", "HBM=1e400"], 2),
    ("validate --capacity 400 digits", ["validate", _T, _H, _S, "--capacity", "HBM=" + "9" * 400], 2),
    ("validate --capacity escape", ["validate", _T, _H, _S, "--capacity", "\x1b[2J=1"], 2),
    ("solve --write-model missing folder",
     ["solve", _T, "-H", _H, "-m", "milp", "--time-limit", "10", "--write-model", "{d}/missing/m.mps"], None),
    ("generate --op-time 1e308", ["generate", "chain", "--layers", "3", "--op-time", "1e308", "-o", "{d}/g.json"], 2),
    ("generate --op-time 9e11", ["generate", "chain", "--layers", "3", "--op-time", "9e11", "-o", "{d}/g.json"], 2),
    ("generate --activation-bytes 8PiB",
     ["generate", "chain", "--layers", "3", "--activation-bytes", "8PiB", "-o", "{d}/g.json"], 2),
    ("generate --tensor-bytes 1e30GiB",
     ["generate", "random", "--ops", "5", "--tensor-bytes", "1e30GiB", "-o", "{d}/g.json"], 2),
]


@pytest.mark.parametrize("argv, status", [pytest.param(a, s, id=i) for i, a, s in OPTION_CASES])
def test_regression_option_cases(tmp_path: Path, argv: list[str], status: int | None) -> None:
    _suite_folder(tmp_path, _read_json(BASIC / "trace.json"), _read_json(BASIC / "hardware.json"))
    write(tmp_path, "suite", ".toml", BENCH_SUITE)
    (tmp_path / "dir.svg").mkdir()
    argv = [a.replace("{d}", str(tmp_path)) for a in argv]
    out_path = next((a for a in argv if a.endswith("g.json")), None)
    outputs = [(out_path, _load_trace)] if out_path else []
    rc, out, err = run_cli(argv)
    check_outcome(argv, rc, out, err, tmp_path, outputs, outputs_on=(0,))
    if status is not None:
        assert rc == status, f"tierplan {argv}: exit {rc}, expected {status}\n{err}"


def _cli_subprocess(args: Sequence[str], timeout: float, memory: int | None = None
                    ) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # pragma: no cover - runs in the child
        if memory is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return subprocess.run([sys.executable, "-m", "solver.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_regression_dev_zero_as_trace() -> None:
    """Reading /dev/zero ends in a message, not MemoryError (the child may use at most 3 GiB)."""
    r = _cli_subprocess(["inspect", "/dev/zero"], timeout=120, memory=3 * 2**30)
    check_outcome(["inspect", "/dev/zero"], r.returncode, r.stdout, r.stderr, None)
    assert r.returncode == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_regression_fifo_as_trace(tmp_path: Path) -> None:
    """A FIFO given as a trace is refused; it does not wait forever for a writer."""
    fifo = tmp_path / "trace.json"
    os.mkfifo(fifo)
    try:
        r = _cli_subprocess(["inspect", str(fifo)], timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("tierplan inspect FIFO still waiting after 120 s")
    check_outcome(["inspect", str(fifo)], r.returncode, r.stdout, r.stderr, tmp_path)
    assert r.returncode == 2
