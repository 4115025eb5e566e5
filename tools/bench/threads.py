"""Benchmark: training-step and Classify Pixels speed on a busy machine (issue: thread policy under load).

One U-Net training step (base 32, depth 4, batch 8 x 13 x 64 x 64, AdamW, cross-entropy) is timed in a
fresh process per configuration, quiet and with 1 and 2 competing busy processes (each a Python loop
that keeps one core busy), for: torch's default threads (one per core), one thread, and the plugin's
thread policy (:mod:`core.training.threads`: threads = cores not busy with other programs). Classify
Pixels (ONNX Runtime, the same U-Net) is timed the same way with its default threads and the policy.
Configurations alternate within each round; the figure is the median over rounds, and every ratio is to
the quiet run of the same configuration family in this run.

Run: ``.venv/bin/python -m deeplandcover.tools.bench.threads [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from deeplandcover.tools.bench.common import cpu_model

_STEP = r"""
import json, os, sys, time
import torch
from deeplandcover.models import build_model
from deeplandcover.core.training.threads import ThreadPolicy
mode, steps = sys.argv[1], int(sys.argv[2])
policy = ThreadPolicy() if mode == "policy" else None
if mode == "policy":
    policy.apply()
elif mode not in ("default", "passive"):
    torch.set_num_threads(int(mode))
torch.manual_seed(0)
model = build_model("unet", 13, 10, base_filters=32, depth=4)
opt = torch.optim.AdamW(model.parameters(), 1e-3)
x, y = torch.randn(8, 13, 64, 64), torch.randint(0, 10, (8, 64, 64))
def step():
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(2):
    step()
times = []
for i in range(steps):
    if policy is not None and i % 5 == 0:
        policy.update()
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"step_ms": 1000 * times[len(times) // 2], "threads": torch.get_num_threads()}))
"""

_CLASSIFY = r"""
import json, sys, time
import numpy as np
from deeplandcover.core.inference.session import open_session
from deeplandcover.core.training.threads import free_cores
mode, model_path = sys.argv[1], sys.argv[2]
threads = 0 if mode == "default" else free_cores()
sess, _ = open_session(model_path, device="cpu", threads=threads)
name = sess.get_inputs()[0].name
x = np.random.default_rng(0).standard_normal((4, 13, 256, 256)).astype("float32")
sess.run(None, {name: x})
times = []
for _ in range(6):
    t = time.perf_counter(); sess.run(None, {name: x}); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"batch_ms": 1000 * times[len(times) // 2], "threads": threads}))
"""


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _run(code: str, *args: str) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if args[0] == "passive":  # torch's default threads, OpenMP threads sleeping at barriers
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _with_load(n: int, fn):
    procs = [_busy() for _ in range(n)]
    try:
        time.sleep(2.0 if n else 0.0)  # let the competitors start (and the load average see them)
        return fn()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _onnx_model(tmp: Path) -> Path:
    """A 13-band, 10-class U-Net exported with the plugin's own exporter."""
    code = r"""
import sys, torch
from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.modelcard import ModelCard
from deeplandcover.core.training.onnx_export import export_onnx
from deeplandcover.models import build_model
m = build_model("unet", 13, 10, base_filters=32, depth=4).eval()
card = ModelCard("unet", [f"B{i}" for i in range(13)], [0.0] * 13, [1.0] * 13,
                 [ClassInfo(i + 1, f"c{i}") for i in range(10)], tile_size=256)
export_onnx(m, card, sys.argv[1], torch.randn(1, 13, 256, 256))
"""
    path = tmp / "unet.onnx"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    return path


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown section (train-step and classify ratios under 0, 1, 2 competitors)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=15)
    args = ap.parse_args(argv)
    import tempfile

    train_modes = ["default", "1", "passive", "policy"]
    classify_modes = ["default", "policy"]
    res: dict[tuple[str, str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = _onnx_model(Path(tmp))
        for _ in range(args.rounds):
            for load in (0, 1, 2):
                for mode in train_modes:
                    r = _with_load(load, lambda m=mode: _run(_STEP, m, str(args.steps)))
                    res.setdefault(("train", mode, load), []).append(r["step_ms"])
                for mode in classify_modes:
                    r = _with_load(load, lambda m=mode: _run(_CLASSIFY, m, str(model)))
                    res.setdefault(("classify", mode, load), []).append(r["batch_ms"])
    med = {k: statistics.median(v) for k, v in res.items()}
    cores = os.cpu_count() or 1
    print("## Training and Classify Pixels on a busy machine (thread policy)\n")
    print(f"- command: `{Path(sys.executable).name} -m deeplandcover.tools.bench.threads --rounds {args.rounds}`")
    print(f"- machine: {cores} cores ({cpu_model()}), load before the run {os.getloadavg()[0]:.2f}")
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(
        "- train step: U-Net base 32 depth 4, batch 8x13x64x64, AdamW, median of "
        f"{args.steps} steps per process, median over {args.rounds} rounds; classify: ONNX Runtime, "
        "batch 4x13x256x256, median of 6 runs. Competitor: `python -c 'while True: pass'` (one core each).\n"
    )
    print("| what | threads | quiet ms | 1 busy ms (ratio) | 2 busy ms (ratio) |")
    print("|---|---|---|---|---|")
    for kind, modes in (("train", train_modes), ("classify", classify_modes)):
        for mode in modes:
            q = med[(kind, mode, 0)]
            cells = [f"{med[(kind, mode, n)]:.0f} ({med[(kind, mode, n)] / q:.2f}x)" for n in (1, 2)]
            label = {
                "default": f"all cores ({cores})",
                "1": "1",
                "passive": "all cores, OMP_WAIT_POLICY=PASSIVE",
                "policy": "policy (free cores)",
            }[mode]
            print(f"| {kind} | {label} | {q:.0f} | {cells[0]} | {cells[1]} |")
    base = med[("train", "default", 0)]
    print(
        f"\nQuiet policy / quiet default: {med[('train', 'policy', 0)] / base:.2f} (train), "
        f"{med[('classify', 'policy', 0)] / med[('classify', 'default', 0)]:.2f} (classify)."
    )


if __name__ == "__main__":
    main()
