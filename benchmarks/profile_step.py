"""Where a training step's time goes: torch.profiler over jointkl's Trainer steps (not a test).

    python benchmarks/profile_step.py vae     # the mnist5k VAE of bench_vae_mnist5k.py, 60 steps
    python benchmarks/profile_step.py gan     # the grid25 GAN of bench_gan_grid25.py, 300 steps

Prints the operators by self CPU time (one thread), after 10 warm-up steps.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from jointkl.data import load
from jointkl.training.config import TrainConfig
from jointkl.training.trainer import Callback, Trainer

WARMUP = 10


class Profiler(Callback):
    """torch.profiler over every step after the warm-up ones."""

    def __init__(self):
        self.prof = profile(activities=[ProfilerActivity.CPU])

    def on_step_start(self, trainer):
        if trainer.step == WARMUP:
            self.prof.start()

    def on_fit_end(self, trainer):
        self.prof.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["vae", "gan"])
    ap.add_argument("--rows", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if a.model == "vae":
        from jointkl.objectives.vae import VAE, VAEConfig
        ds = load("mnist5k")
        model, batch, steps = VAE(VAEConfig(latent_dim=20, hidden=512, layers=2, decoder="bernoulli"), ds.shape,
                                  ds.kind), 100, 60
    else:
        from jointkl.objectives.gan import GAN, GANConfig
        ds = load("grid25")
        model, batch, steps = GAN(GANConfig(latent_dim=2, hidden=128, layers=3), ds.shape, ds.kind), 256, 300
    cb = Profiler()
    Trainer(model, ds, TrainConfig(steps=WARMUP + steps, batch_size=batch, device="cpu", log_every=WARMUP + steps),
            callbacks=(cb,), progress=False).fit()
    print(cb.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))


if __name__ == "__main__":
    main()
