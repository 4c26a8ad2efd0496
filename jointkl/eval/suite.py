"""One metrics suite for every model: each metric is a function (model, dataset, opts) -> dict of numbers.

A metric that the model or the data cannot support (no decoder, no mixture means) is skipped when the
metrics were chosen automatically and is an error when asked for by name. The automatic choice is the cheap
metrics (AUTO); AIS, the classifier IS/FID and the Inception-v3 IS/FID run only when named.

    elbo, iwae   model.log_likelihood on the test split (iwae with k samples)
    ais          AIS log p(x) (jointkl.divergences.ais; `ais` options: steps, chains, ... and n = test examples used)
    is, fid      IS of n samples under the data's domain classifier, FID against the test split (eval.quality)
    is_inception, fid_inception   the same with Inception-v3 (needs torch-fidelity and its weights file)
    modes        VEEGAN mode coverage of n samples;  recon  per-pixel reconstruction MSE
    accuracy     classify(x) against the test labels, as is and after the best matching of classes to labels
                 (eval.accuracy; for models with `classify`: svae, cvae, ada, infogan)
"""
from __future__ import annotations

from typing import Callable

import torch

from jointkl.data import Dataset
from jointkl.errors import JointKLError
from jointkl.divergences.ais import ais_config
from jointkl.eval.accuracy import accuracy_scores
from jointkl.eval.modes import mode_stats
from jointkl.eval.recon import reconstruction_mse


def _ll(method: str):
    def metric(model, ds: Dataset, k: int, n: int, **_) -> dict:
        ll = model.log_likelihood(ds.test, method=method, k=1 if method == "elbo" else k)   # (M,)
        key = method if method == "elbo" else f"{method}_k{k}"
        return {key: float(ll.mean()), f"{key}_se": float(ll.std() / ll.numel() ** 0.5)}
    return metric


def _mean_se(key: str, v: torch.Tensor) -> dict:
    return {key: float(v.mean()), f"{key}_se": float(v.std() / v.numel() ** 0.5) if v.numel() > 1 else 0.0}


def _ais(model, ds: Dataset, k: int, n: int, ais: dict | None = None, **_) -> dict:
    if not (hasattr(model, "prior") and getattr(model, "p_x", None) is not None):
        raise JointKLError(f"metric ais needs a model with a prior p(z) and a decoder p(x|z); {model.name} has none")
    opts = dict(ais or {})
    x = ds.test[: opts.pop("n", None) or len(ds.test)]
    chains = ais_config(**opts).chains                                     # checks the options; AVB Sec. 5.2 defaults
    opts.pop("chains", None)
    return _mean_se("ais", model.log_likelihood(x, "ais", k=chains, **opts))


def _classifier(model, ds: Dataset, k: int, n: int, **_) -> dict:
    from jointkl.eval.quality import classifier_scores
    return classifier_scores(model.sample(n).cpu(), ds)


def _inception(model, ds: Dataset, k: int, n: int, **_) -> dict:
    from jointkl.eval.quality import inception_scores
    return inception_scores(model.sample(n).cpu(), ds.test, device=model.device)


def _modes(model, ds: Dataset, k: int, n: int, **_) -> dict:
    if "means" not in ds.meta:
        raise JointKLError(f"metric modes needs a mixture with known means; data {ds.name} has none")
    return mode_stats(model.sample(n).flatten(1).cpu(), ds.meta["means"], ds.meta["std"])


def _recon(model, ds: Dataset, k: int, n: int, **_) -> dict:
    return {"recon_mse": reconstruction_mse(ds.test, model.reconstruct(ds.test).cpu())}


def _accuracy(model, ds: Dataset, k: int, n: int, **_) -> dict:
    if not hasattr(model, "classify"):
        raise JointKLError(f"metric accuracy needs a model that classifies (svae, cvae, ada, infogan); "
                           f"{model.name} does not")
    if ds.test_labels is None:
        raise JointKLError(f"metric accuracy needs test labels; data {ds.name} has none")
    return accuracy_scores(model.classify(ds.test).cpu(), ds.test_labels)


METRICS: dict[str, Callable] = {"elbo": _ll("elbo"), "iwae": _ll("iwae"), "ais": _ais, "is": _classifier,
                                "fid": _classifier, "is_inception": _inception, "fid_inception": _inception,
                                "modes": _modes, "recon": _recon, "accuracy": _accuracy}
AUTO = ("elbo", "iwae", "modes", "recon", "accuracy")   # metrics=None: the cheap ones (AIS, IS/FID cost more)


@torch.no_grad()
def evaluate(model, ds: Dataset, metrics: list[str] | None = None, k: int = 100, n: int = 2500,
             seed: int = 0, ais: dict | None = None) -> dict:
    """Evaluate on the test split; `metrics=None` runs every AUTO metric the model and data support.
    `ais`: options of the AIS metric, e.g. {"steps": 200, "chains": 5, "n": 100} (default: AVB Sec. 5.2's
    1,000 distributions and 5 chains on the whole test split)."""
    unknown = [m for m in metrics or [] if m not in METRICS]
    if unknown:
        raise JointKLError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    if tuple(ds.shape) != tuple(model.data_shape):
        raise JointKLError(f"data {ds.name} has shape {ds.shape} but the model was trained on {model.data_shape}")
    out: dict = {}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        done = set()
        for name in metrics or AUTO:
            if METRICS[name] in done:                                      # is and fid come from one computation
                continue
            done.add(METRICS[name])
            try:
                out.update(METRICS[name](model, ds, k, n, ais=ais))
            except JointKLError:
                if metrics:
                    raise
    return out
