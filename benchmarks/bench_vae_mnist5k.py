"""Training throughput of jointkl's Trainer vs a minimal hand-written PyTorch loop (not a test).

The mnist5k VAE 784-512-512-(2x20) / 20-512-512-784 with a Bernoulli decoder, Adam lr 1e-3, batch 100,
4,000 training digits. Both contenders train the same networks from the same initialization for the same
number of steps; they alternate (hand, jointkl, hand, ...) so drifts in machine speed hit both, and the
ratio of medians is printed with the test ELBO each reached.

    python benchmarks/bench_vae_mnist5k.py [--steps 400] [--rounds 3] [--threads 2]
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
from jointkl.objectives.vae import VAE, VAEConfig
from jointkl.training.config import TrainConfig
from jointkl.training.trainer import Trainer


def hand_loop(model: VAE, x: torch.Tensor, steps: int, batch: int, seed: int) -> None:
    """What a researcher would write: pre-loaded tensor, randperm batches, BCE + analytic KL."""
    enc, dec = model.q_z.net, model.p_x.net
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(len(x), generator=g), 0
    for _ in range(steps):
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        xb = x[perm[pos:pos + batch]]
        pos += batch
        mu, s = enc(xb).unbind(1)
        std = F.softplus(s) + 1e-3
        z = mu + std * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + std.pow(2) - 1).sum(1) - std.log().sum(1)
        loss = (rec + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def jointkl_loop(model: VAE, ds, steps: int, batch: int, seed: int) -> None:
    cfg = TrainConfig(steps=steps, batch_size=batch, seed=seed, log_every=100, ckpt_every=10**9)
    with tempfile.TemporaryDirectory() as d:
        Trainer(model, ds, cfg, d).fit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = load("mnist5k")
    torch.manual_seed(0)
    init = VAE(VAEConfig(latent_dim=20, hidden=512, layers=2, decoder="bernoulli"), ds.shape, ds.kind)
    times = {"hand": [], "jointkl": []}
    elbo = {}
    for r in range(a.rounds):
        for name in ("hand", "jointkl"):
            model = copy.deepcopy(init)
            torch.manual_seed(r)
            t = time.perf_counter()
            if name == "hand":
                hand_loop(model, ds.train, a.steps, 100, r)
            else:
                jointkl_loop(model, ds, a.steps, 100, r)
            times[name].append(time.perf_counter() - t)
            torch.manual_seed(0)
            elbo[name] = float(model.eval().log_likelihood(ds.test, "elbo").mean())
    sps = {k: a.steps * 100 / statistics.median(v) for k, v in times.items()}
    print(f"threads={a.threads} steps={a.steps} rounds={a.rounds} (jointkl's time includes its setup, "
          f"TensorBoard/CSV logging, the final sample grid and checkpoint)")
    for k in times:
        print(f"  {k:8s} {sps[k]:8.0f} samples/s   test ELBO after {a.steps} steps: {elbo[k]:.2f}")
    print(f"  ratio jointkl / hand = {sps['jointkl'] / sps['hand']:.3f}")


if __name__ == "__main__":
    main()
