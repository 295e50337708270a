"""``tierplan generate``: files, byte-identical output, exit status 2 with clear messages."""

from __future__ import annotations

import gzip

import pytest

from solver.cli import main
from solver.formats import load_trace

SMALL = {
    "train": ["--model", "llama-tiny", "--seq-len", "64", "--grad-accum", "2"],
    "decode": ["--model", "llama-tiny", "--context", "48", "--new-tokens", "3", "--block-size", "16",
               "--no-prefill", "--kv-tier", "SSD"],
    "moe": ["--model", "moe-tiny", "--context", "32", "--new-tokens", "3", "--block-size", "16", "--skew", "1.5"],
    "chain": ["--layers", "6", "--skip", "2", "--activation-bytes", "1 MiB", "--op-time", "0.5ms"],
    "random": ["--ops", "25", "--pressure", "0.5"],
}


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_generate_writes_loadable_identical_files(kind, tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json.gz", tmp_path / "c.json.gz"
    args = ["generate", kind, *SMALL[kind], "--hardware", "laptop-sized", "--seed", "7"]
    code, out, err = run(args + ["-o", str(a)], capsys)
    assert code == 0 and err == "" and "ops" in out and str(a) in out
    assert run(args + ["-o", str(b)], capsys)[0] == 0
    assert run(args + ["-o", str(c), "--quiet"], capsys) == (0, "", "")
    assert b.read_bytes() == c.read_bytes()                  # same seed, byte-identical (gzip too)
    assert gzip.decompress(b.read_bytes()) == a.read_bytes()
    trace = load_trace(b)
    assert len(trace.ops) > 0 and trace.meta["seed"] == 7 and trace.meta["kind"] == kind


@pytest.mark.parametrize("kind", ["moe", "random", "chain"])
def test_different_seeds_differ(kind, tmp_path, capsys):
    outs = []
    for seed in ("1", "2"):
        p = tmp_path / f"{seed}.json"
        assert run(["generate", kind, *SMALL[kind], "--seed", seed, "-o", str(p), "--quiet"], capsys)[0] == 0
        outs.append(p.read_bytes())
    assert outs[0] != outs[1]


def test_name_indent_and_efficiency(tmp_path, capsys):
    p, q = tmp_path / "p.json", tmp_path / "q.json"
    base = ["generate", "train", *SMALL["train"], "--hardware", "h100-pcie"]
    assert run(base + ["-o", str(p), "--name", "mine", "--indent", "0", "--quiet"], capsys)[0] == 0
    assert run(base + ["-o", str(q), "--compute-efficiency", "1", "--memory-efficiency", "1", "--quiet"],
               capsys)[0] == 0
    assert load_trace(p).name == "mine" and b"\n " not in p.read_bytes()
    assert load_trace(q).compute_time < load_trace(p).compute_time
    assert load_trace(q).meta["roofline"]["hardware"] == "h100-pcie"


@pytest.mark.parametrize("args,needle", [
    (["train", "--model", "llama-tiny", "--seq-len", "-5"], "--seq-len: must be > 0"),
    (["train", "--layers", "2", "--hidden", "100", "--heads", "3", "--ffn", "8", "--vocab", "9"],
     "--heads: 3 heads do not divide hidden size 100"),
    (["train", "--model", "gpt-5"], "--model: unknown model preset 'gpt-5'; valid presets:"),
    (["decode", "--model", "llama3-8b", "--hardware", "tpu-v9"], "--hardware: unknown hardware preset 'tpu-v9'"),
    (["decode", "--model", "llama3-8b", "--batch", "two"], "--batch: expected an integer"),
    (["moe", "--model", "moe-tiny", "--experts-tier", "NVM"], "--experts-tier: hardware ascend-910b has no tier"),
    (["chain", "--layers", "0", "--seed", "-1"], "--seed: must be >= 0"),
    (["random", "--pressure", "2"], "--pressure: must be in [0, 1]"),
])
def test_bad_options_exit_2_without_traceback(args, needle, tmp_path, capsys):
    out = tmp_path / "x.json"
    code, stdout, err = run(["generate", *args, "-o", str(out)], capsys)
    assert code == 2
    assert needle in err and "Traceback" not in err
    assert all(line.startswith("error: ") for line in err.splitlines())
    assert not out.exists()


def test_unknown_kind_and_missing_output(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "shuffle", "-o", "x.json"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["generate", "train", "--model", "llama-tiny"])
    assert exc.value.code == 2
    assert "-o" in capsys.readouterr().err


def test_list_and_bare_generate(capsys):
    code, out, _ = run(["generate", "--list"], capsys)
    assert code == 0 and "llama3-70b" in out and "ascend-910b" in out and "moe" in out
    assert run(["generate"], capsys)[0] == 2


def test_inspect_shows_generated_kinds(tmp_path, capsys):
    p = tmp_path / "d.json.gz"
    assert run(["generate", "decode", *SMALL["decode"], "-o", str(p), "--quiet"], capsys)[0] == 0
    code, out, err = run(["inspect", str(p)], capsys)
    assert code == 0, err
    assert "kv_cache" in out and "weight" in out
