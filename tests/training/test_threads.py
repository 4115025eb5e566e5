"""The training thread policy: cores busy with other programs are measured and left to them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from deeplandcover.core.training import threads as th


def test_parse_cpu_line_excludes_idle_iowait_and_nice() -> None:
    #      user nice system idle iowait irq softirq steal
    line = "cpu  100 50 20 300 10 5 5 10 0 0"
    busy, total = th.parse_cpu_line(line, hz=10)
    assert total == pytest.approx(50.0)
    assert busy == pytest.approx((100 + 20 + 5 + 5 + 10) / 10)
    busy_n, _ = th.parse_cpu_line(line, hz=10, count_nice=True)
    assert busy_n == pytest.approx(busy + 5.0)
    assert th.parse_cpu_line("intr 1 2 3") is None


def test_other_busy_cores_subtracts_own_cpu() -> None:
    a = th._Sample(wall=0.0, own=0.0, stat=(0.0, 0.0))
    # 2 cores for 1 s: 2 s of CPU in all, 1.5 s of it busy, 0.5 s of which is this process
    b = th._Sample(wall=1.0, own=0.5, stat=(1.5, 2.0))
    assert th.other_busy_cores(a, b, cores=2) == pytest.approx(1.0)
    assert th.other_busy_cores(b, b, cores=2) is None  # no time elapsed


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def busy_process():
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    yield p
    p.kill()
    p.wait()


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the busy-core measurement reads /proc/stat (Linux)")
def test_a_busy_competitor_takes_one_core_from_the_policy(busy_process) -> None:
    cores = os.cpu_count() or 1
    policy = th.ThreadPolicy(cores=cores)
    n = policy.apply()
    import torch

    assert torch.get_num_threads() == n
    assert n <= max(1, cores - 1)
    assert policy.other_busy is not None and policy.other_busy >= th.TAKEN
    msg = policy.busy_message()
    assert msg and "busy" in msg and f"of {cores} cores" in msg
    busy_process.kill()
    busy_process.wait()
    time.sleep(0.2)
    assert policy.update(force=False) is False  # re-checked at most every RECHECK_S seconds


def test_a_fixed_thread_count_is_kept() -> None:
    import torch

    policy = th.ThreadPolicy(fixed=1)
    assert policy.apply() == 1 and torch.get_num_threads() == 1
    assert policy.update(force=True) is False and policy.threads == 1 and torch.get_num_threads() == 1


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the busy-core measurement reads /proc/stat (Linux)")
def test_training_on_a_busy_machine_warns_once(busy_process, tmp_path) -> None:
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.trainer import train_model

    from ..helpers.chips import make_chip_folder
    from ..helpers.feedback import RecordingFeedback

    make_chip_folder(tmp_path / "chips", "single", grid=(4, 4), tile=16)
    fb = RecordingFeedback()

    cfg = TrainConfig(epochs=3, batch_size=4, base_filters=8, depth=2, num_threads=2, lr=3e-3)
    train_model([tmp_path / "chips"], tmp_path / "out", cfg, fb)
    busy = [ln for ln in fb.lines if ln.startswith("WARNING The machine is busy")]
    assert len(busy) == 1 and "fixed by the threads parameter" in busy[0]


def test_ddp_ranks_keep_their_share_without_measuring(busy_process) -> None:
    policy = th.ThreadPolicy(None, cores=1, measure=False)
    assert policy.apply() == 1 and policy.update(force=True) is False and policy.busy_message() is None
