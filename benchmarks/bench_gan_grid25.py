"""Steps/s of jointkl's Trainer vs a hand-written alternating GAN loop on grid25 (not a test).

A small MLP GAN (3x128 LeakyReLU, latent 2, batch 256, Adam (0.5, 0.999) lr 1e-3, non-saturating loss,
one D and one G update per step): an overhead-bound workload, so it shows what the trainer's bookkeeping
costs. The contenders alternate within one run. Printed: steps/s of the loop (jointkl: first to last step,
its logging every 100 steps included) and end to end (jointkl: Trainer set-up, TensorBoard, the final sample
plot and checkpoint included), each by wall clock and by this process's CPU time (steadier when other
processes share the cores), best of the rounds.

    python benchmarks/bench_gan_grid25.py [--steps 2000] [--rounds 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, jointkl_fit, machine, ratios, report, timed  # noqa: E402

from jointkl.data import load  # noqa: E402
from jointkl.objectives.gan import GAN, GANConfig  # noqa: E402
from jointkl.training.config import TrainConfig  # noqa: E402

BATCH, LATENT = 256, 2


def hand_loop(G: torch.nn.Module, D: torch.nn.Module, x: torch.Tensor, steps: int, seed: int) -> None:
    """What a researcher would write: pre-loaded tensor, random batches, softplus losses, torch's Adam."""
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        real = x[torch.randint(len(x), (BATCH,), generator=g)]
        fake = G(torch.randn(BATCH, LATENT)).detach()
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-D(G(torch.randn(BATCH, LATENT)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = load("grid25")
    torch.manual_seed(0)
    init = GAN(GANConfig(latent_dim=LATENT, hidden=128, layers=3), ds.shape, ds.kind)
    tmp = tempfile.mkdtemp()
    n_steps = lambda r: a.steps if r >= 0 else 20     # noqa: E731  (r = -1: the warm-up call)

    def hand(r):
        model = copy.deepcopy(init)
        torch.manual_seed(max(r, 0))
        return timed(lambda: hand_loop(model.G.net, model.D, ds.train, n_steps(r), max(r, 0)))

    def jointkl(precision: str):
        def run(r):
            cfg = TrainConfig(steps=n_steps(r), batch_size=BATCH, seed=max(r, 0), log_every=100, ckpt_every=10**9,
                              device="cpu", precision=precision)
            return jointkl_fit(copy.deepcopy(init), ds, cfg, Path(tempfile.mkdtemp(dir=tmp)))
        return run

    print(f"machine: {machine()}")
    print(f"grid25 GAN 3x128, batch {BATCH}, {a.steps} steps, {a.rounds} rounds, contenders alternate")
    contenders = {"hand": hand, "jointkl": jointkl("fp32"), "jointkl bf16": jointkl("bf16")}
    rates = report(alternate(contenders, a.rounds), a.steps, "steps/s")
    ratios(rates, "jointkl", "hand")
    ratios(rates, "jointkl bf16", "jointkl")
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
