"""Hu et al. (2018) Tables 2-4 at CPU scale: the two transfers the paper derives, importance weighting for GANs
(IW, eq. 16) and adversary activation for VAEs (AA, eq. 17), each beside its base model on the same nets,
optimizer, data and seeds; only the switch differs.

Scales: "default" trains on mnist5k (4,000 train / 1,000 test digits; the paper uses full MNIST with DCGAN-style
conv nets); "quick" is a few hundred steps; "full" reads MNIST from its files (60,000 / 10,000) with more steps.
The paper selects the AA temperature from {1, 1.5, 3, 5} by validation (supplement I.2); `AA_TEMPERATURE` is
what our validation run picked (see its comment); `select_temperature` redoes that selection.
"""
from __future__ import annotations

from pathlib import Path

import torch

import jointkl.plots  # noqa: F401  (selects the Agg backend)
from jointkl import data
from jointkl.api import load
from jointkl.plots import save_samples
from jointkl.data import keep_labels
from jointkl.reproduce.base import Context, Job, Result, Row, Table, image_nets, nets_name, pick, register, train_many

# MLP encoder/decoder/discriminator, Bernoulli pixels on dynamically binarized digits, Adam lr 1e-3, batch 100
VAE_MNIST = dict(binarize="dynamic", batch_size=100, latent_dim=16, hidden=256, layers=2, lr=1e-3, log_every=250)
# selected by `select_temperature` (AA-VAE on 10 % of mnist5k, 1,000 steps, seed 0): validation ELBO -131.43 (T=1),
# -131.41 (1.5), -129.93 (3), -130.27 (5); the plain VAE had -132.02 there
AA_TEMPERATURE = 3.0
FRACTIONS = {"1%": 0.01, "10%": 0.1, "100%": 1.0}

TABLE3 = {"VAE": ("vae", {}), "AA-VAE": ("vae", {"aa": True}),
          "CVAE": ("cvae", {}), "AA-CVAE": ("cvae", {"aa": True})}
PAPER3 = {"VAE": (-122.89, -104.49, -92.53), "AA-VAE": (-122.15, -103.05, -92.42),
          "CVAE": (-125.44, -102.63, -93.16), "AA-CVAE": (-122.88, -101.63, -92.75)}
TABLE4 = {"SVAE": {}, "AA-SVAE": {"aa": True}}
PAPER4 = {"SVAE": {"1%": 0.9412, "10%": 0.9768}, "AA-SVAE": {"1%": 0.9425, "10%": 0.9797}}
# GANs on grey digits, D 5x slower than G. Classifier IS of a plain GAN on seed 0 (2,000 samples): 4.87 with these
# at 3,000 steps; at 1,500 steps 3.76 (these), 1.01 (both 2e-4), 2.10 (D 1e-4), 1.00 (3 layers), 4.50 (512 units,
# latent 32, 3.5x slower); with dali-table1's 2e-4 / 5e-5 both GANs collapsed to one blurred digit (IS 1.1-1.2)
GAN_MNIST = dict(batch_size=100, latent_dim=16, hidden=256, layers=2, lr=1e-3, lr_d=2e-4, betas=(0.5, 0.999),
                 log_every=250)
PAPER2 = {"GAN": 8.34, "IWGAN": 8.45, "CGAN": 0.985, "IWCGAN": 0.987}


def _data(scale: str) -> str:
    return pick(scale, "mnist5k", "mnist5k", "mnist")


def _aa(opts: dict, temperature: float) -> dict:
    return {**opts, "aa_temperature": temperature} if opts.get("aa") else opts


def _finish(pairs: list[tuple[Row, Row]], what: str, paper_note: str, seeds: int) -> tuple[str, str]:
    """Verdict and note: does the extension beat its base in every cell, as the paper claims?"""
    better = [(a, b) for a, b in pairs if (b.mean > a.mean) == (a.better == "higher")]
    diffs = ", ".join(f"{b.method} - {a.method} ({a.metric}) {b.mean - a.mean:+.3g} (std {a.std:.2g}/{b.std:.2g})"
                      for a, b in pairs)
    ok = len(better) == len(pairs) and bool(pairs)
    note = (f"Verdict: the paper's direction ({what} better than its base in every cell) "
            f"{'holds' if ok else 'does not hold'}: {what} is better in {len(better)} of {len(pairs)} cells, "
            f"{seeds} seed(s); differences of the means: {diffs}. {paper_note}")
    return ("reproduced" if ok else "not reproduced"), note


# ---- Table 3: test ELBO of VAE / AA-VAE and CVAE / AA-CVAE on 1 %, 10 %, 100 % of the training digits --------

def table3_jobs(ctx: Context, out: Path, temperature: float = AA_TEMPERATURE) -> list[Job]:
    scale, seeds = ctx.scale, ctx.seeds
    steps = pick(scale, 100, 1000, 10000)
    fractions = pick(scale, {"10%": 0.1}, FRACTIONS)
    return [Job(m, _data(scale), out / f"{label}-{frac}-seed{s}",
                {**VAE_MNIST, **image_nets(scale), **_aa(o, temperature), "train_fraction": f, "steps": steps, "ckpt_every": steps, "seed": s})
            for frac, f in fractions.items() for label, (m, o) in TABLE3.items() for s in range(seeds)]


@torch.no_grad()
def test_elbo(model, x: torch.Tensor, y: torch.Tensor, k: int = 10) -> float:
    """Mean test ELBO (k draws per digit): log p(x) for the VAE, log p(x|c) with the true labels for the CVAE."""
    torch.manual_seed(0)
    ll = model.log_likelihood(x, "elbo", k=k, y=y) if model.labels else model.log_likelihood(x, "elbo", k=k)
    return float(ll.mean())


def hu_table3(ctx: Context, out: Path) -> Result:
    scale, seeds, jobs = ctx.scale, ctx.seeds, table3_jobs(ctx, out)
    ds = data.load(_data(scale))
    x, y = data.binarize_fixed(ds.test), ds.test_labels                  # one fixed binarization of the test set
    values: dict[tuple[str, str], list[float]] = {}
    for _, _, run, _ in jobs:
        label, frac, _ = run.name.rsplit("-", 2)
        values.setdefault((label, frac), []).append(test_elbo(load(run, device="cpu"), x, y))
    rows, pairs = [], []
    for frac in dict.fromkeys(f for _, f in values):
        cells = {label: Row(label, f"test ELBO, {frac} of the training data", values[(label, frac)],
                            PAPER3[label][list(FRACTIONS).index(frac)]) for label in TABLE3}
        rows += cells.values()
        pairs += [(cells["VAE"], cells["AA-VAE"]), (cells["CVAE"], cells["AA-CVAE"])]
    verdict, note = _finish(pairs, "AA", "The paper's gains are 0.1 to 2.6 nats, larger with less data "
                            f"(full MNIST, conv nets; its 1 % is 600 digits, ours {round(0.01 * len(ds.train))} of "
                            f"{ds.name}). CVAE rows bound log p(x|c).", seeds)
    return Result(rows, verdict, note)


# ---- Table 4 (and Table 2 right): SVAE vs AA-SVAE test accuracy with 1 % and 10 % labels -----------------------

# alpha on validation digits (the last 500 training digits, their labels hidden in training), 1,000 steps, seed 0:
# 10 % labels: 0.48 (alpha 0.1, Kingma's 0.1 N), 0.81 (1), 0.88 (10); 1 % labels: 0.38 (1), 0.60 (10)
SVAE_MNIST = dict(VAE_MNIST, classes=10, alpha=10.0)


def table4_jobs(ctx: Context, out: Path, temperature: float = AA_TEMPERATURE) -> list[Job]:
    scale, seeds = ctx.scale, ctx.seeds
    steps = pick(scale, 60, 1000, 10000)
    fractions = pick(scale, {"10%": 0.1}, {"1%": 0.01, "10%": 0.1})
    return [Job("svae", _data(scale), out / f"{label}-{frac}-seed{s}",
                {**SVAE_MNIST, **image_nets(scale), **_aa(o, temperature), "labelled": f, "steps": steps, "ckpt_every": steps, "seed": s})
            for frac, f in fractions.items() for label, o in TABLE4.items() for s in range(seeds)]


def hu_table4(ctx: Context, out: Path) -> Result:
    scale, seeds, jobs = ctx.scale, ctx.seeds, table4_jobs(ctx, out)
    ds = data.load(_data(scale))
    x = data.binarize_fixed(ds.test)
    values: dict[tuple[str, str], list[float]] = {}
    for _, _, run, _ in jobs:
        label, frac, _ = run.name.rsplit("-", 2)
        acc = (load(run, device="cpu").classify(x) == ds.test_labels).float().mean()
        values.setdefault((label, frac), []).append(float(acc))
    rows, pairs = [], []
    for frac in dict.fromkeys(f for _, f in values):
        cells = {label: Row(label, f"test accuracy, {frac} labels", values[(label, frac)], PAPER4[label][frac])
                 for label in TABLE4}
        rows += cells.values()
        pairs.append((cells["SVAE"], cells["AA-SVAE"]))
    n_lab = {frac: int((keep_labels(ds.train_labels, f, 0) >= 0).sum()) for frac, f in (("1%", 0.01), ("10%", 0.1))}
    verdict, note = _finish(pairs, "AA-SVAE", f"The paper's gains (+0.0013, +0.0029 over 5 runs) are about "
                            f"one of its standard deviations; its 1 % is 600 labels of full MNIST, ours "
                            f"{n_lab['1%']} ({n_lab['10%']} at 10 %) of {ds.name}.", seeds)
    return Result(rows, verdict, note)


# ---- Table 2: GAN vs IWGAN (classifier Inception Score), CGAN vs IWCGAN (conditional accuracy) ------------------

TABLE2 = {"GAN": ("gan", {}), "IWGAN": ("gan", {"iw": True}), "CGAN": ("cgan", {}), "IWCGAN": ("cgan", {"iw": True})}


def table2_jobs(ctx: Context, out: Path) -> list[Job]:
    scale, seeds = ctx.scale, ctx.seeds
    steps = pick(scale, 200, 3000, 20000)
    return [Job(m, _data(scale), out / f"{label}-seed{s}", {**GAN_MNIST, **image_nets(scale), **o, "steps": steps, "ckpt_every": steps, "seed": s})
            for label, (m, o) in TABLE2.items() for s in range(seeds)]


@torch.no_grad()
def hu_table2(ctx: Context, out: Path, n: int = 5000) -> Result:
    from jointkl.eval.quality import domain_classifier, inception_score
    scale, seeds, jobs = ctx.scale, ctx.seeds, table2_jobs(ctx, out)
    ds = data.load(_data(scale))
    clf = domain_classifier(ds)                                           # trained once per data set, cached
    probs = lambda x: clf.outputs(x)[0].softmax(1)                        # noqa: E731  (N, 10)
    values: dict[str, list[float]] = {label: [] for label in TABLE2}
    figs = []
    for _, _, run, _ in jobs:
        label, s = run.name.rsplit("-seed", 1)
        model = load(run, device="cpu")
        torch.manual_seed(1000 + int(s))
        if model.labels:                                                  # accuracy of G(z, c) judged by clf
            c = torch.arange(n) % 10
            x = model.sample(n, y=c)
            values[label].append(float((probs(x).argmax(1) == c).float().mean()))
        else:                                                             # IS = exp E KL(p(c|x) || p(c))
            x = model.sample(n)
            values[label].append(inception_score(probs(x)))
        if s == "0":
            figs.append(out / f"samples-{label}.png")
            save_samples(x[:100] if model.labels else x[:64], figs[-1], title=f"{label}, seed 0")
    metric = {"GAN": "classifier Inception Score", "CGAN": "accuracy of conditional samples"}
    rows = [Row(label, metric["CGAN" if "CGAN" in label else "GAN"], values[label], PAPER2[label]) for label in TABLE2]
    pairs = [(rows[0], rows[1]), (rows[2], rows[3])]
    verdict, note = _finish(pairs, "IW", f"Scores by the domain classifier of {ds.name} (jointkl.eval.quality; "
                            f"test accuracy {clf.test_accuracy:.3f}, IS of the test digits "
                            f"{inception_score(probs(ds.test)):.2f}; the paper's ResNet: 0.990 and 9.09 on MNIST), "
                            f"{n} samples per run; the paper uses DCGANs on full MNIST, we use {nets_name(scale)} on "
                            f"{ds.name}.", seeds)
    return Result(rows, verdict, note, figs)


# ---- the paper's temperature selection (supplement I.2) --------------------------------------------------------

def select_temperature(out: Path, scale: str = "default", temperatures=(1.0, 1.5, 3.0, 5.0), seed: int = 0,
                       workers: int | None = None) -> dict[float, float]:
    """AA-VAE trained on 10 % of the training digits at each temperature; the mean ELBO of the last 500 training
    digits (validation: never among the first 10 %) for each. The largest wins."""
    base = table3_jobs(Context(scale, 1), out)
    opts = next(o for m, _, run, o in base if m == "vae" and o.get("aa") and "10%" in run.name)
    jobs = [("vae", _data(scale), out / f"select-T{t}", {**opts, "aa_temperature": t, "seed": seed}) for t in temperatures]
    train_many(jobs, workers)
    x = data.binarize_fixed(data.load(_data(scale)).train[-500:])
    return {t: test_elbo(load(run, device="cpu"), x, None) for t, (_, _, run, _) in zip(temperatures, jobs)}


_MNIST = "mnist5k (full scale: MNIST from its files and DCGAN-style conv nets), dynamically binarized for training, one fixed binarization "
register(Table("hu-table2", "Hu Table 2: GAN vs IWGAN (Inception Score), CGAN vs IWCGAN (conditional accuracy)",
               "mnist5k grey digits (full scale: MNIST, DCGAN-style conv nets); G and D MLPs 2x256, latent 16, batch 100, Adam(0.5, 0.999) lr 1e-3 (D 2e-4), "
               "non-saturating loss, 3,000 steps; IW = Hu eq. 16 weights over each batch. Scores from a classifier "
               "trained on the same data (jointkl.eval.quality), 5,000 samples per run.", hu_table2, table2_jobs,
               seeds=2, full_data=("mnist",)))
register(Table("hu-table3", "Hu Table 3: VAE vs AA-VAE, CVAE vs AA-CVAE test ELBO on 1 %, 10 %, 100 % of the data",
               _MNIST + "of the test digits for the ELBO (10 draws each). Encoder, decoder and D MLPs 2x256, latent 16, "
               "batch 100, Adam lr 1e-3, 1,000 steps; AA: one model sample per data point, temperature "
               f"{AA_TEMPERATURE} (validation).", hu_table3, table3_jobs, seeds=2, full_data=("mnist",)))
register(Table("hu-table4", "Hu Table 4 (Table 2 right): SVAE vs AA-SVAE test accuracy, 1 % and 10 % labels",
               _MNIST + "of the test digits. M2 with MLPs 2x256, latent 16, alpha 10 (validation), batch 100, "
               f"Adam lr 1e-3, 1,000 steps; accuracy of argmax q(c|x); AA temperature {AA_TEMPERATURE}.", hu_table4, table4_jobs,
               seeds=2, full_data=("mnist",)))
