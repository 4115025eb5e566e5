"""CPU thread policy for training: use the cores other programs leave free, re-checked while training runs.

Torch's default is one OpenMP thread per core. When another program keeps a core busy, the thread on
that core gets a fraction of it and every other thread waits for it at each parallel region's barrier,
so a training step on a 2-core machine with one busy competitor took 3.55x its quiet time, against
2.05x with this policy (BENCHMARKS.md "Training and Classify Pixels on a busy machine"). Using only the free cores keeps the
threads in step. :class:`ThreadPolicy` measures the cores busy with *other* processes (system CPU time
minus this process's own, from ``/proc/stat`` on Linux, not counting programs running at a lower
priority (``nice``), which give their cores up to us; the load average minus this process's share
elsewhere on Unix; nothing on Windows, where it keeps every core) and sets ``torch.set_num_threads``.

Never imports torch at module level; :meth:`ThreadPolicy.apply` does.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

#: The policy re-measures at most this often (seconds); a check costs two small file reads.
RECHECK_S = 5.0
#: A core counts as taken by other programs when they keep at least this much of one busy (kernel time
#: of niced programs cannot be told apart from other kernel time, so a little load is not a core).
TAKEN = 0.75


def _taken(busy: float) -> int:
    return math.floor(busy + 1.0 - TAKEN)


def _proc_stat() -> tuple[float, float] | None:
    """``(busy, total)`` CPU seconds of the whole machine since boot, from ``/proc/stat``; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            line = f.readline()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return parse_cpu_line(line, hz, count_nice=_own_niceness() > 0)


def parse_cpu_line(line: str, hz: float = 100.0, count_nice: bool = False) -> tuple[float, float] | None:
    """``(busy, total)`` seconds from the ``cpu`` line of ``/proc/stat`` (clock ticks at ``hz`` per second).

    Idle and iowait are not busy; nor is ``nice`` time (programs at a lower priority give their cores
    up to us) unless ``count_nice`` (this process is niced itself). None when the line is not a cpu line.
    """
    parts = line.split()
    try:
        fields = [float(v) for v in parts[1:9]]
    except ValueError:
        return None
    if not parts or parts[0] != "cpu" or len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    if not count_nice:
        idle += fields[1]
    total = sum(fields)  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (total - idle) / hz, total / hz


def _own_niceness() -> int:
    try:
        return os.nice(0) if hasattr(os, "nice") else 0
    except OSError:
        return 0


def _own_cpu() -> float:
    """CPU seconds used by this process (all its threads)."""
    return time.process_time()


@dataclass
class _Sample:
    wall: float
    own: float
    stat: tuple[float, float] | None


def _sample() -> _Sample:
    return _Sample(time.monotonic(), _own_cpu(), _proc_stat())


def other_busy_cores(before: _Sample, after: _Sample, cores: int) -> float | None:
    """Cores (float) kept busy by other processes between two samples; None when it cannot be measured.

    Linux: (machine busy CPU seconds - this process's CPU seconds) / wall seconds. Elsewhere on Unix:
    the 1-minute load average minus this process's average parallelism over the interval (a lagging
    estimate). Windows: None.
    """
    wall = after.wall - before.wall
    if wall <= 0:
        return None
    own = max(0.0, after.own - before.own) / wall
    if before.stat and after.stat:
        busy = after.stat[0] - before.stat[0]
        total = after.stat[1] - before.stat[1]
        if total <= 0:
            return None
        machine = cores * busy / total  # busy cores, all processes
        return max(0.0, machine - own)
    if hasattr(os, "getloadavg"):
        return max(0.0, os.getloadavg()[0] - own)
    return None


def _probe(cores: int, seconds: float) -> tuple[float | None, _Sample]:
    """Cores busy with other processes over the next ``seconds``, and the closing sample."""
    a = _sample()
    time.sleep(seconds)
    b = _sample()
    return other_busy_cores(a, b, cores), b


def _free(cores: int, busy: float | None) -> int:
    """The cores (>= 1) left when other programs keep ``busy`` cores busy (None: unknown, all of them)."""
    return cores if busy is None else max(1, cores - _taken(busy))


def free_cores(cores: int | None = None, probe_s: float = 0.5) -> int:
    """Cores not busy with other processes now (>= 1), measured over ``probe_s`` seconds."""
    cores = cores or os.cpu_count() or 1
    return _free(cores, _probe(cores, probe_s)[0])


@dataclass
class ThreadPolicy:
    """Set torch's CPU threads to the free cores, and follow the machine's load while training.

    Args:
        fixed: a thread count chosen by the user (``THREADS``/``--threads``): used as it is, never changed.
        cores: cores this process may use (default ``os.cpu_count()``; under DDP the per-process share).
        measure: measure the machine's load (False: keep ``fixed`` threads and never warn; for DDP ranks,
            whose peers on the node would look like busy programs).

    Attributes:
        threads: the current torch thread count.
        other_busy: cores busy with other processes at the last check (None: unknown).
        busy_seconds: wall seconds since :meth:`apply` during which other processes kept at least
            :data:`TAKEN` of a core busy (for the report's "machine was busy" line).
    """

    fixed: int | None = None
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    measure: bool = True
    threads: int = 0
    other_busy: float | None = None
    busy_seconds: float = 0.0
    _last: _Sample | None = None

    def apply(self) -> int:
        """Measure once and set the threads; returns them."""
        if not self.measure:
            self.threads = int(self.fixed or self.cores)
            self._torch_set(self.threads)
            return self.threads
        busy, self._last = _probe(self.cores, 0.5)
        self._set_from(busy, 0.0)
        self._torch_set(self.threads)
        return self.threads

    def update(self, force: bool = False) -> bool:
        """Re-measure (at most every :data:`RECHECK_S` seconds unless ``force``); True when the threads changed.

        With ``fixed`` threads the load is still measured (for :meth:`busy_message`), the threads kept.
        """
        if self._last is None:
            return False
        if not force and time.monotonic() - self._last.wall < RECHECK_S:
            return False  # called between batches: no file read until the next check is due
        now = _sample()
        busy = other_busy_cores(self._last, now, self.cores)
        interval = now.wall - self._last.wall
        self._last = now
        old = self.threads
        self._set_from(busy, interval)
        if self.threads != old:
            self._torch_set(self.threads)
            return True
        return False

    def busy_message(self) -> str | None:
        """A warning when other programs used cores at the last check (the load is above the free cores)."""
        if self.other_busy is None or self.other_busy < TAKEN:
            return None
        uses = f"training uses {self.threads} thread{'s' if self.threads > 1 else ''}"
        if self.fixed:
            uses += " (fixed by the threads parameter; 0 lets training leave busy cores to the other programs)"
        return (
            f"The machine is busy: other programs keep {self.other_busy:.1f} of {self.cores} cores busy, so "
            f"{uses} and runs slower than on a quiet machine. Close other heavy programs (or other Processing "
            "runs) for full speed."
        )

    def _set_from(self, busy: float | None, interval: float) -> None:
        self.other_busy = busy
        if busy is not None and busy >= TAKEN:
            self.busy_seconds += interval
        self.threads = int(self.fixed) if self.fixed else _free(self.cores, busy)

    @staticmethod
    def _torch_set(n: int) -> None:
        import torch

        torch.set_num_threads(n)
