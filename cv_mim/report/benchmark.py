"""Benchmark figures as ratios against this machine's matmul peak, measured in the same run.

The machine is shared and noisy, so every timed section also reports the CPU time that OTHER processes
used while it ran (from /proc/stat minus this process's own CPU time): a figure taken while another
process kept a core busy is flagged as not clean.
"""

import dataclasses
import os
import resource
import time

import numpy as np
import tensorflow as tf


def _proc_stat_busy_and_total():
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _own_cpu_seconds():
    """CPU time of this process and of its finished children (a benchmark's own subprocesses)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class LoadMonitor:
    """Context manager measuring the CPU used by other processes (in cores) during a section."""

    def __enter__(self):
        self._stat0 = _proc_stat_busy_and_total()
        self._own0 = _own_cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        stat1 = _proc_stat_busy_and_total()
        own = _own_cpu_seconds() - self._own0
        if self._stat0 is None or stat1 is None or self.seconds <= 0:
            self.other_cores = float("nan")
            return False
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (stat1[0] - self._stat0[0]) / ticks
        self.other_cores = max(0.0, (busy - own) / self.seconds)
        return False

    @property
    def clean(self):
        return not (self.other_cores > 0.25)


def machine_info():
    info = {"cpus": os.cpu_count(), "tensorflow": tf.__version__}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["load_average_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def matmul_peak(dtype=tf.float32, size=2048, seconds=1.5):
    """Sustained GFLOP/s of a square matmul in ``dtype`` (the machine's practical peak)."""
    a = tf.random.normal([size, size], dtype=tf.float32)
    b = tf.random.normal([size, size], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)

    @tf.function
    def mm(x, y):
        return tf.matmul(x, y)

    mm(a, b).numpy()
    runs = 0
    with LoadMonitor() as mon:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            mm(a, b).numpy()
            runs += 1
    flops = 2.0 * size ** 3 * runs
    return {"gflops": flops / mon.seconds / 1e9, "other_cores": mon.other_cores,
            "dtype": dtype.name}


def dense_kernel_parameters(model):
    """Number of multiply-accumulates per example of a model's Dense kernels."""
    total = 0
    for v in model.trainable_variables:
        if v.path.endswith("kernel") and len(v.shape) == 2:
            total += int(v.shape[0]) * int(v.shape[1])
    return total


@dataclasses.dataclass
class TimedFigure:
    name: str
    value: float
    unit: str
    other_cores: float
    note: str = ""

    def row(self):
        flag = "" if not (self.other_cores > 0.25) else " (NOT clean)"
        return f"| {self.name} | {self.value:.4g} {self.unit} | {self.other_cores:.2f}{flag} | {self.note} |"


def time_callable(fn, *, warmup=2, min_seconds=3.0, max_iters=1000):
    """Runs fn() repeatedly; returns (seconds per call, LoadMonitor)."""
    for _ in range(warmup):
        fn()
    iters = 0
    with LoadMonitor() as mon:
        deadline = time.perf_counter() + min_seconds
        while iters < max_iters and (iters < 3 or time.perf_counter() < deadline):
            fn()
            iters += 1
    return mon.seconds / iters, mon


def random_pairs(batch_size, seed=0):
    rng = np.random.default_rng(seed)
    anchor = rng.normal(scale=0.3, size=(batch_size, 13, 2)).astype(np.float32)
    positive = (anchor + rng.normal(scale=0.05, size=anchor.shape)).astype(np.float32)
    return tf.constant(anchor), tf.constant(positive)
