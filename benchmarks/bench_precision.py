"""Training throughput of the mnist5k MLP VAE in float32 vs bfloat16 autocast (`precision=fp32|bf16`; not a test).

The VAE of bench_vae_mnist5k.py: 784-512-512-(2x20) / 20-512-512-784 LeakyReLU MLPs, Bernoulli decoder, Adam lr 1e-3,
batch 100, the 4,000 training digits. Both precisions train the same networks from the same initialization with the
same seed for the same epochs, alternating within one run (so that load from other processes hits both), through
jointkl's Trainer, one torch thread. Printed: samples/s of the training loop and end to end, by wall clock and by CPU
time, best of the rounds (common.report); the ratio bf16 / fp32; and the test ELBO (1,000 test digits, 10 samples,
evaluated in float32) each reached, median of the rounds, and their difference.

bf16 pays where the CPU multiplies bfloat16 natively (avx512_bf16 or AMX: check `grep -o 'avx512_bf16\\|amx_bf16'
/proc/cpuinfo`); elsewhere torch emulates it and bf16 can be slower than fp32. Run it alone:

    .venv/bin/python benchmarks/bench_precision.py [--epochs 5] [--rounds 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_vae_mnist5k import BATCH, LATENT, test_elbo  # noqa: E402
from common import alternate, jointkl_fit, machine, median, ratios, report  # noqa: E402

from jointkl.data import load  # noqa: E402
from jointkl.objectives.vae import VAE, VAEConfig  # noqa: E402
from jointkl.training.config import TrainConfig  # noqa: E402


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return "?"
    have = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16") if f in flags]
    return " ".join(have) or "none of avx512f, avx512_bf16, amx_bf16, avx512_fp16"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the 4,000 training digits (40 steps each)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = load("mnist5k")
    steps = a.epochs * len(ds.train) // BATCH
    torch.manual_seed(0)
    init = VAE(VAEConfig(latent_dim=LATENT, hidden=512, layers=2, decoder="bernoulli"), ds.shape, ds.kind)
    tmp = tempfile.mkdtemp()

    def contender(precision: str):
        def go(r):
            model = copy.deepcopy(init)
            cfg = TrainConfig(steps=steps if r >= 0 else 5, batch_size=BATCH, seed=max(r, 0), log_every=100,
                              ckpt_every=10**9, device="cpu", threads=a.threads, precision=precision)
            res = jointkl_fit(model, ds, cfg, Path(tempfile.mkdtemp(dir=tmp)))
            return {**res, "elbo": test_elbo(model.q_z.net, model.p_x.net, ds.test, log_var=False)}
        return go

    print(f"machine: {machine()}")
    print(f"CPU flags: {cpu_flags()}")
    print(f"mnist5k VAE, {a.epochs} epochs = {steps} steps of batch {BATCH}, {a.rounds} rounds, fp32 and bf16 alternate")
    results = alternate({"fp32": contender("fp32"), "bf16": contender("bf16")}, a.rounds)
    rates = report(results, steps * BATCH, "training samples/s", extra=("elbo",))
    ratios(rates, "bf16", "fp32")
    print(f"test ELBO bf16 - fp32 (medians): {median(results, 'bf16', 'elbo') - median(results, 'fp32', 'elbo'):+.3f} "
          "nats")
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
