"""DistributedDataParallel training under torchrun (2 CPU processes, gloo) and the single-process path."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist

from deeplandcover.core.modelcard import read_card
from deeplandcover.core.training import distributed as du
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.trainer import train_model

from ..helpers.chips import make_chip_folder

torch.set_num_threads(1)

ARGS = {"epochs": 1, "batch_size": 4, "base_filters": 8, "depth": 2, "lr": 3e-3, "device": "cpu", "num_threads": 1}
DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    d = tmp_path_factory.mktemp("chips")
    make_chip_folder(d, "single", grid=(4, 4), tile=16)
    return d


def test_single_process_context(monkeypatch):
    for k in DIST_ENV:
        monkeypatch.delenv(k, raising=False)
    ctx, dev = du.setup("cpu")
    assert not ctx.enabled and ctx.is_main and dev.type == "cpu" and not dist.is_initialized()
    a = np.arange(4)
    assert du.all_reduce_sum(ctx, a, dev) is a or np.array_equal(du.all_reduce_sum(ctx, a, dev), a)
    assert du.broadcast_object(ctx, {"x": 1}) == {"x": 1} and du.all_any(ctx, True, dev)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    ctx = du.env_context()
    assert ctx.enabled and not ctx.is_main and ctx.local_world_size == 3
    shards = [du.shard(10, du.DistContext(rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(10))  # disjoint, complete, no padding
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="RANK=5"):
        du.env_context()


def test_ddp_two_cpu_processes_gloo(chips, tmp_path):
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env["OMP_NUM_THREADS"] = "1"
    # Debian's torch is built without libuv, which torchrun asks for; USE_LIBUV=0 is meant to select the
    # older store but torchrun's static rendezvous ignores it (measured: Debian trixie 2.6, forky 2.14).
    env["USE_LIBUV"] = "0"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m",
        "deeplandcover.core.training",
        "--chips",
        str(chips),
        "--out",
        str(out),
    ]
    for k, v in ARGS.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if p.returncode != 0 and "use_libuv was requested" in p.stderr:
        pytest.skip("this torch build (no libuv) cannot start torchrun's rendezvous store; see docs/training.md")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "DDP over 2 processes (gloo" in p.stdout
    assert p.stdout.count("Epoch 1/1") == 1  # only rank 0 logs

    # the same model file format as a single-process run
    card = read_card(out / "model.onnx")
    assert card.bands == ["B1", "B2", "B3"] and [c.value for c in card.classes] == [1, 2, 3]
    assert card.training["world_size"] == 2 and card.training["onnx_parity"]["passed"]
    ck = torch.load(out / "model.pt", weights_only=True)
    assert ck["format"] == "deeplandcover-checkpoint" and ck["epoch"] == 1
    assert not any(k.startswith("module.") for k in ck["state_dict"])  # the bare model, not the DDP wrapper
    with open(out / "training_log.csv") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1"]
    assert sorted(f.name for f in out.iterdir() if f.name.startswith(".")) == []  # no temporary files left

    # single process: the unchanged path (no process group); the DDP run's all-reduced confusion matrix
    # counts exactly the validation pixels of the single-process run (no shard padding, nothing missed)
    single = train_model([chips], tmp_path / "single", TrainConfig(**ARGS))
    assert not dist.is_initialized()
    s_card = read_card(single.model_path)
    assert s_card.training["world_size"] == 1 and s_card.training["val_chips"] == card.training["val_chips"]
    assert card.training["val_pixels"] == s_card.training["val_pixels"] == sum(single.metrics["support"]) > 0
