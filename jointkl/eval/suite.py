"""One metrics suite for every model: each metric is a function (model, dataset, opts) -> dict of numbers.

A metric that the model or the data cannot support (no decoder, no mixture means) is skipped when the
metrics were chosen automatically and is an error when asked for by name.
"""
from __future__ import annotations

from typing import Callable

import torch

from jointkl.data import Dataset
from jointkl.errors import JointKLError
from jointkl.eval.modes import mode_stats
from jointkl.eval.recon import reconstruction_mse


def _ll(method: str):
    def metric(model, ds: Dataset, k: int, n: int) -> dict:
        ll = model.log_likelihood(ds.test, method=method, k=1 if method == "elbo" else k)   # (M,)
        key = method if method == "elbo" else f"{method}_k{k}"
        return {key: float(ll.mean()), f"{key}_se": float(ll.std() / ll.numel() ** 0.5)}
    return metric


def _modes(model, ds: Dataset, k: int, n: int) -> dict:
    if "means" not in ds.meta:
        raise JointKLError(f"metric modes needs a mixture with known means; data {ds.name} has none")
    return mode_stats(model.sample(n).flatten(1).cpu(), ds.meta["means"], ds.meta["std"])


def _recon(model, ds: Dataset, k: int, n: int) -> dict:
    return {"recon_mse": reconstruction_mse(ds.test, model.reconstruct(ds.test).cpu())}


METRICS: dict[str, Callable] = {"elbo": _ll("elbo"), "iwae": _ll("iwae"), "modes": _modes, "recon": _recon}


@torch.no_grad()
def evaluate(model, ds: Dataset, metrics: list[str] | None = None, k: int = 100, n: int = 2500,
             seed: int = 0) -> dict:
    """Evaluate on the test split; `metrics=None` runs every metric the model and data support."""
    unknown = [m for m in metrics or [] if m not in METRICS]
    if unknown:
        raise JointKLError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    if tuple(ds.shape) != tuple(model.data_shape):
        raise JointKLError(f"data {ds.name} has shape {ds.shape} but the model was trained on {model.data_shape}")
    out: dict = {}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for name in metrics or METRICS:
            try:
                out.update(METRICS[name](model, ds, k, n))
            except JointKLError:
                if metrics:
                    raise
    return out
