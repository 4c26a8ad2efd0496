"""What the benchmarks share: the machine line, contenders alternated within one run, jointkl's loop timed
from the inside, and the medians and ratios printed at the end. Timings, never tests."""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections import defaultdict
from typing import Callable

import torch

from jointkl.training.trainer import Callback, Trainer


def machine() -> str:
    """CPU model, cores, torch threads and the load average: the context every number needs."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} thread(s); "
            f"load average {load}")


def alternate(contenders: dict[str, Callable[[int], dict[str, float]]], rounds: int) -> dict[str, dict[str, list]]:
    """Run every contender once per round, rotating who goes first, so that a change in the machine's speed
    (other processes on shared cores) hits all of them; each returns its own measurements, e.g.
    {"end_to_end": seconds, "elbo": ...}. Returns {contender: {measurement: [one value per round]}}.
    A contender is first called once with round -1, a short warm-up that is not kept (imports, first-call
    allocations and kernel set-up would otherwise fall on whoever goes first)."""
    names = list(contenders)
    for n in names:
        contenders[n](-1)
    out: dict[str, dict[str, list]] = {n: defaultdict(list) for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            for k, v in contenders[n](r).items():
                out[n][k].append(v)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {out[n]['end_to_end'][-1]:.2f} s" for n in names),
              flush=True)
    return out


def median(results: dict[str, dict[str, list]], name: str, key: str) -> float:
    return statistics.median(results[name][key])


# (key, what it times); "loop" excludes one-time set-up and the end-of-run sample grid and checkpoint
TIMES = (("seconds", "loop, wall clock"), ("end_to_end", "end to end, wall clock"),
         ("cpu", "loop, CPU time"), ("cpu_end_to_end", "end to end, CPU time"))


def timed(fn: Callable[[], None]) -> dict[str, float]:
    """Wall-clock and CPU seconds of fn() (a hand-written loop: its loop is its whole run)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    sec, cpu = time.perf_counter() - t, time.process_time() - c
    return {"seconds": sec, "end_to_end": sec, "cpu": cpu, "cpu_end_to_end": cpu}


def report(results: dict[str, dict[str, list]], work: float, unit: str, extra: tuple[str, ...] = ()) -> dict:
    """Print work per second for every contender and timing (the best of the rounds: other processes only
    ever add time), plus the medians of `extra` measurements; return {contender: {timing: rate}}."""
    rates = {n: {k: work / min(r[k]) for k, _ in TIMES if k in r} for n, r in results.items()}
    print(f"{unit}, best of {len(next(iter(results.values()))['end_to_end'])} rounds:")
    print(f"  {'':12s}" + "".join(f"{what:>24s}" for _, what in TIMES) + "".join(f"{e:>12s}" for e in extra))
    for n in results:
        cells = "".join(f"{rates[n][k]:24.1f}" if k in rates[n] else f"{'-':>24s}" for k, _ in TIMES)
        print(f"  {n:12s}{cells}" + "".join(f"{median(results, n, e):12.2f}" for e in extra))
    return rates


def ratios(rates: dict, a: str, b: str) -> None:
    for k, what in TIMES:
        if k in rates[a] and k in rates[b]:
            print(f"ratio {a} / {b}, {what + ':':24s} {rates[a][k] / rates[b][k]:.3f}")


class LoopClock(Callback):
    """Times a Trainer's loop from the start of its first step to the end of its last, by wall clock and by
    this process's CPU time: the steps' own bookkeeping (logging every K steps, NaN checks) is inside; the
    one-time set-up and the final sample grid and checkpoint are not (`jointkl_fit` also times `fit` as a
    whole)."""

    def __init__(self):
        self.first = self.last = None

    def on_step_start(self, trainer):
        if self.first is None:
            self.first = (time.perf_counter(), time.process_time())

    def on_step_end(self, trainer, logs):
        self.last = (time.perf_counter(), time.process_time())

    @property
    def seconds(self) -> float:
        return self.last[0] - self.first[0]

    @property
    def cpu(self) -> float:
        return self.last[1] - self.first[1]


def jointkl_fit(model, ds, cfg, run_dir) -> dict[str, float]:
    """Train with jointkl's Trainer: its loop ('seconds', 'cpu') and Trainer(...) to fit()'s return
    ('end_to_end', 'cpu_end_to_end'), by wall clock and CPU time."""
    from jointkl.data import prepare
    t, c = time.perf_counter(), time.process_time()
    clock = LoopClock()
    ds = prepare(ds, cfg.binarize, cfg.train_fraction, cfg.labelled, cfg.seed, model.labels, model.name)
    Trainer(model, ds, cfg, run_dir, callbacks=(clock,)).fit()
    return {"seconds": clock.seconds, "cpu": clock.cpu, "end_to_end": time.perf_counter() - t,
            "cpu_end_to_end": time.process_time() - c}
