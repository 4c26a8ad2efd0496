"""Steps/s of jointkl's Trainer vs a hand-written alternating GAN loop on grid25 (not a test).

A small MLP GAN (3x128, latent 2, batch 256, Adam (0.5, 0.999) lr 1e-3, non-saturating loss): an
overhead-bound workload, so it shows what the trainer's bookkeeping costs. The contenders alternate.

    python benchmarks/bench_gan_grid25.py [--steps 1000] [--rounds 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from jointkl.data import load
from jointkl.objectives.gan import GAN, GANConfig
from jointkl.training.config import TrainConfig
from jointkl.training.trainer import Trainer


def hand_loop(model: GAN, x: torch.Tensor, steps: int, batch: int, seed: int) -> None:
    G, D = model.G.net, model.D
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        real = x[torch.randint(len(x), (batch,), generator=g)]
        fake = G(torch.randn(batch, 2)).detach()
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-D(G(torch.randn(batch, 2)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()


def jointkl_loop(model: GAN, ds, steps: int, batch: int, seed: int) -> None:
    cfg = TrainConfig(steps=steps, batch_size=batch, seed=seed, log_every=100, ckpt_every=10**9)
    with tempfile.TemporaryDirectory() as d:
        Trainer(model, ds, cfg, d).fit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = load("grid25")
    torch.manual_seed(0)
    init = GAN(GANConfig(latent_dim=2, hidden=128, layers=3), ds.shape, ds.kind)
    times = {"hand": [], "jointkl": []}
    for r in range(a.rounds):
        for name, fn in (("hand", lambda m: hand_loop(m, ds.train, a.steps, 256, r)),
                         ("jointkl", lambda m: jointkl_loop(m, ds, a.steps, 256, r))):
            model = copy.deepcopy(init)
            t = time.perf_counter()
            fn(model)
            times[name].append(time.perf_counter() - t)
    sps = {k: a.steps / statistics.median(v) for k, v in times.items()}
    print(f"threads={a.threads} steps={a.steps} rounds={a.rounds} (jointkl's time includes its setup, logging, "
          "the final sample plot and checkpoint)")
    for k in times:
        print(f"  {k:8s} {sps[k]:8.1f} steps/s")
    print(f"  ratio jointkl / hand = {sps['jointkl'] / sps['hand']:.3f}")


if __name__ == "__main__":
    main()
