"""Benchmark: what moves the CPU training step itself (channels-last, torch.compile, batch size).

One U-Net training step (base 32, depth 4, 13 bands, 10 classes, 64 x 64 chips, AdamW, cross-entropy)
on tensors in memory, per configuration in a fresh process: the default (batch 8, contiguous NCHW, eager),
channels-last memory format (model and input, or the model only), ``torch.compile`` (inductor), and
batch 16 / 32. Reported as chips per
second and as a ratio to the default, configurations alternating over ``--rounds`` rounds (median).

Run: ``.venv/bin/python -m deeplandcover.tools.bench.step_options [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from deeplandcover.tools.bench.common import cpu_model

_STEP = r"""
import json, sys, time
import torch
from deeplandcover.models import build_model
mode, batch, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
torch.manual_seed(0)
model = build_model("unet", 13, 10, base_filters=32, depth=4)
x, y = torch.randn(batch, 13, 64, 64), torch.randint(0, 10, (batch, 64, 64))
if mode.startswith("channels_last"):
    model = model.to(memory_format=torch.channels_last)
if mode == "channels_last":
    x = x.contiguous(memory_format=torch.channels_last)
opt = torch.optim.AdamW(model.parameters(), 1e-3)
fwd = torch.compile(model) if mode == "compile" else model
def step():
    loss = torch.nn.functional.cross_entropy(fwd(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
t = time.perf_counter()
for _ in range(3):
    step()
warm = time.perf_counter() - t
n, t = 0, time.perf_counter()
while time.perf_counter() - t < seconds:
    step(); n += batch
print(json.dumps({"chips_per_s": n / (time.perf_counter() - t), "warmup_s": warm}))
"""

CONFIGS = [
    ("default", 8),
    ("channels_last", 8),
    ("channels_last_model", 8),
    ("compile", 8),
    ("default", 16),
    ("default", 32),
]


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args(argv)
    res: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.rounds):
        for mode, batch in CONFIGS:
            out = subprocess.run(
                [sys.executable, "-c", _STEP, mode, str(batch), str(args.seconds)],
                capture_output=True,
                text=True,
                check=True,
            )
            res.setdefault((mode, batch), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    import torch

    base = statistics.median(r["chips_per_s"] for r in res[("default", 8)])
    print("## Train Model: what moves the CPU training step\n")
    print(f"- command: `{Path(sys.executable).name} -m deeplandcover.tools.bench.step_options --rounds {args.rounds}`")
    print(f"- machine: {os.cpu_count()} cores ({cpu_model()}), torch {torch.__version__}")
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(
        "- U-Net base 32 depth 4, 13 x 64 x 64 chips, AdamW, tensors in memory; chips/s over "
        f"{args.seconds:.0f} s per process after 3 warm-up steps, median of {args.rounds} alternating rounds\n"
    )
    print("| configuration | batch | chips/s | ratio to default | warm-up s |")
    print("|---|---|---|---|---|")
    for mode, batch in CONFIGS:
        rs = res[(mode, batch)]
        cps = statistics.median(r["chips_per_s"] for r in rs)
        warm = statistics.median(r["warmup_s"] for r in rs)
        print(f"| {mode} | {batch} | {cps:.1f} | {cps / base:.2f} | {warm:.1f} |")


if __name__ == "__main__":
    main()
