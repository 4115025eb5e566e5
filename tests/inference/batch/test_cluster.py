"""core.inference.batch.cluster: worker layout (threads and GPUs per host), the client opener, cancel feedback."""

from __future__ import annotations

from deeplandcover.core.inference.batch.cluster import (
    EventFeedback,
    host_of,
    local_gpu_count,
    open_client,
    worker_layout,
)


class _FakeClient:
    """The part of ``distributed.Client`` that :func:`worker_layout` reads: workers, and a function run on each."""

    def __init__(self, workers: dict[str, tuple[int, int]]) -> None:
        self.workers = workers  # address -> (cpu count, GPU count) of its machine

    def scheduler_info(self, n_workers: int = 5) -> dict:
        return {"workers": {a: {} for a in self.workers}}

    def run(self, fn) -> dict:
        return {a: (cpus if fn.__name__ == "cpu_count" else gpus) for a, (cpus, gpus) in self.workers.items()}


def test_host_of_strips_protocol_and_port():
    assert host_of("tcp://10.0.0.5:8786") == "10.0.0.5"
    assert host_of("tls://node-1.cluster:40123") == "node-1.cluster"
    assert host_of("inproc://192.168.1.2/123/1:0") == "192.168.1.2/123/1"


def test_worker_layout_shares_cores_and_gpus_per_host():
    client = _FakeClient(
        {
            "tcp://a:1": (16, 2),
            "tcp://a:2": (16, 2),
            "tcp://a:3": (16, 2),
            "tcp://b:1": (8, 0),
        }
    )
    threads, gpus, n = worker_layout(client)
    assert n == 4
    assert threads == {"a": 16 // 3, "b": 8}  # the cores of a machine split between its workers
    assert gpus == {"tcp://a:1": 0, "tcp://a:2": 1, "tcp://a:3": 0}  # round robin over the machine's GPUs


def test_open_client_hands_back_a_client_it_does_not_own():
    client = _FakeClient({})
    with open_client(client) as got:
        assert got is client


def test_event_feedback_outside_dask_is_never_canceled(monkeypatch):
    fb = EventFeedback("no-such-event")
    fb.set_progress(50.0)
    assert fb.is_canceled() is False and EventFeedback(None).is_canceled() is False
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert local_gpu_count() == 0
