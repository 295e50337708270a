"""Record a PyTorch Execution Trace and Kineto traces of a small transformer training step.

Used to check the ``pytorch-et`` importer on real GPU traces (kernel attribution, window
matching). Needs only PyTorch. Writes into OUT (default ``.``), gzip'd:

* ``tf_et.json.gz`` + ``tf_kineto.json.gz``: one step recorded with the ET observer and the
  profiler in the same session (Kineto joins by record-function id);
* ``tf_et_alone.json.gz`` + ``tf_kineto_3steps.json.gz``: an ET recorded alone (start/stop) and a
  separate Kineto trace of three later steps (the importer must pick the matching window by name);
* ``tf_timing.json``: the step's wall time measured with CUDA events, and the model's sizes.

Usage: ``python -m solver.perf.record_cuda_trace OUT``
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys

import torch
from torch.profiler import ExecutionTraceObserver, ProfilerActivity, profile, schedule

B, S, D, H, F, LAYERS = (8, 256, 512, 8, 2048, 4) if torch.cuda.is_available() else (2, 16, 64, 4, 128, 2)


def gz(path: str) -> None:
    with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(path)


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    layers = [torch.nn.TransformerEncoderLayer(D, H, F, batch_first=True, dropout=0.0) for _ in range(LAYERS)]
    model = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    x = torch.randn(B, S, D, device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = model(x).float().pow(2).mean()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if dev == "cuda":
        torch.cuda.synchronize()
        times = []
        for _ in range(5):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            step()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) * 1e-3)
    else:
        times = []
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])

    et_path = os.path.join(out, "tf_et.json")
    k_path = os.path.join(out, "tf_kineto.json")
    observer = ExecutionTraceObserver()
    observer.register_callback(et_path)
    with profile(activities=acts, execution_trace_observer=observer, schedule=schedule(wait=0, warmup=1, active=1),
                 on_trace_ready=lambda p: p.export_chrome_trace(k_path)) as prof:
        for _ in range(2):
            step()
            prof.step()

    alone = os.path.join(out, "tf_et_alone.json")
    observer2 = ExecutionTraceObserver()
    observer2.register_callback(alone)
    observer2.start()
    step()
    observer2.stop()
    observer2.unregister_callback()
    k3 = os.path.join(out, "tf_kineto_3steps.json")
    with profile(activities=acts, schedule=schedule(wait=0, warmup=1, active=3), acc_events=True,
                 on_trace_ready=lambda p: p.export_chrome_trace(k3)) as prof:
        for _ in range(4):
            step()
            prof.step()
    for p in (et_path, k_path, alone, k3):
        gz(p)
    params = list(model.parameters())
    info = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "torch": torch.__version__,
            "step_times_s": times, "param_bytes": sum(p.numel() * p.element_size() for p in params),
            "params": len(params), "B": B, "S": S, "D": D, "H": H, "F": F, "layers": LAYERS}
    with open(os.path.join(out, "tf_timing.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
