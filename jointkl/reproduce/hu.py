"""Hu et al. (2018) Tables 2-4 at CPU scale: the two transfers the paper derives, importance weighting for GANs
(IW, eq. 16) and adversary activation for VAEs (AA, eq. 17), each beside its base model on the same nets,
optimizer, data and seeds; only the switch differs.

Scales: "default" trains on mnist5k (4,000 train / 1,000 test digits; the paper uses full MNIST with DCGAN-style
conv nets); "quick" is a few hundred steps; "full" reads MNIST from its files (60,000 / 10,000) with more steps.
Every run's settings are a preset (jointkl/presets, with the reasons for each value): common/hu-mnist5k-gan for
Table 2, common/hu-mnist5k-vae and -aa for Table 3, common/hu-mnist5k-svae and -svae-aa for Table 4. The paper
selects the AA temperature from {1, 1.5, 3, 5} by validation (supplement I.2); common/hu-mnist5k-aa holds what our
validation run picked (`AA_TEMPERATURE`, with the run's numbers); `select_temperature` redoes that selection.
"""
from __future__ import annotations

from pathlib import Path

import torch

import jointkl.plots  # noqa: F401  (selects the Agg backend)
from jointkl import data, presets
from jointkl.api import load
from jointkl.plots import save_samples
from jointkl.data import keep_labels
from jointkl.reproduce.base import Context, Job, Result, Row, Table, register, train_many
from jointkl.reproduce.from_presets import describe_runs, nets_of, preset_jobs

AA_TEMPERATURE = presets.get("common/hu-mnist5k-aa").options["aa_temperature"]   # what our validation picked
FRACTIONS = {"1%": "1pc", "10%": "10pc", "100%": "100pc"}   # a column of the paper's tables -> its presets' suffix

# label -> its presets' name without the fraction's suffix (Table 3: of the training digits; Table 4: of the labels)
TABLE3 = {"VAE": "vae/mnist5k-hu", "AA-VAE": "vae/mnist5k-hu-aa",
          "CVAE": "cvae/mnist5k-hu", "AA-CVAE": "cvae/mnist5k-hu-aa"}
PAPER3 = {"VAE": (-122.89, -104.49, -92.53), "AA-VAE": (-122.15, -103.05, -92.42),
          "CVAE": (-125.44, -102.63, -93.16), "AA-CVAE": (-122.88, -101.63, -92.75)}
TABLE4 = {"SVAE": "svae/mnist5k-hu", "AA-SVAE": "svae/mnist5k-hu-aa"}
PAPER4 = {"SVAE": {"1%": 0.9412, "10%": 0.9768}, "AA-SVAE": {"1%": 0.9425, "10%": 0.9797}}
# Table 3's SVAE columns: test ELBOs of the same runs (1 % / 10 % labelled, the rest of the digits unlabelled)
PAPER3_SVAE = {"SVAE": {"1%": -108.22, "10%": -99.44}, "AA-SVAE": {"1%": -107.61, "10%": -98.81}}
TABLE2 = {"GAN": "gan/mnist5k-hu", "IWGAN": "gan/mnist5k-hu-iw",
          "CGAN": "cgan/mnist5k-hu", "IWCGAN": "cgan/mnist5k-hu-iw"}
PAPER2 = {"GAN": 8.34, "IWGAN": 8.45, "CGAN": 0.985, "IWCGAN": 0.987}


def _data_text(name: str) -> str:
    """Where the preset `name` trains below and at the full scale, in words, for a protocol."""
    p = presets.get(name)
    return f"{p.data_at('default')} (full scale: {p.data_at('full')} from its files and {nets_of(name, 'full')})"


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

def table3_runs(ctx: Context) -> dict[tuple[str, str], str]:
    """(label, fraction of the training digits) -> preset, of Table 3's runs at this scale (quick: 10 % only)."""
    return {(label, frac): f"{stem}-{FRACTIONS[frac]}" for frac in ctx.pick(["10%"], list(FRACTIONS))
            for label, stem in TABLE3.items()}


def table3_jobs(ctx: Context, out: Path) -> list[Job]:
    return preset_jobs(ctx, [(out / f"{label}-{frac}-seed{{s}}", name)
                             for (label, frac), name in table3_runs(ctx).items()])


@torch.no_grad()
def test_elbo(model, x: torch.Tensor, y: torch.Tensor, k: int = 10) -> float:
    """Mean test ELBO (k draws per digit): log p(x) for the VAE; log p(x|c) with the true labels y for a labelled
    model (the CVAE); without labels (y None) the SVAE's Kingma U(x), a bound on log p(x) with c inferred."""
    torch.manual_seed(0)
    given = model.labels and y is not None
    ll = model.log_likelihood(x, "elbo", k=k, y=y) if given else model.log_likelihood(x, "elbo", k=k)
    return float(ll.mean())


def hu_table3(ctx: Context, out: Path) -> Result:
    seeds, jobs = ctx.seeds, table3_jobs(ctx, out)
    ds = data.load(jobs[0].data)
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
    one = presets.get(f"{TABLE3['VAE']}-{FRACTIONS['1%']}").at(ctx.scale)["train_fraction"]
    runs = {f"{label} {frac}": name for (label, frac), name in table3_runs(ctx).items()}
    verdict, note = _finish(pairs, "AA", "The paper's gains are 0.1 to 2.6 nats, larger with less data "
                            f"(full MNIST, conv nets; its 1 % is 600 digits, ours {round(one * len(ds.train))} of "
                            f"{ds.name}). CVAE rows bound log p(x|c). The paper's SVAE / AA-SVAE columns of this "
                            "table are computed by hu-table4, from its runs. " + describe_runs(runs, ctx.scale), seeds)
    return Result(rows, verdict, note)


# ---- Table 4 (and Table 2 right): SVAE vs AA-SVAE test accuracy with 1 % and 10 % labels -----------------------

def table4_runs(ctx: Context) -> dict[tuple[str, str], str]:
    """(label, fraction of the training labels) -> preset, of Table 4's runs at this scale (quick: 10 % only)."""
    return {(label, frac): f"{stem}-{FRACTIONS[frac]}-labels" for frac in ctx.pick(["10%"], ["1%", "10%"])
            for label, stem in TABLE4.items()}


def table4_jobs(ctx: Context, out: Path) -> list[Job]:
    return preset_jobs(ctx, [(out / f"{label}-{frac}-seed{{s}}", name)
                             for (label, frac), name in table4_runs(ctx).items()])


def hu_table4(ctx: Context, out: Path) -> Result:
    seeds, jobs = ctx.seeds, table4_jobs(ctx, out)
    ds = data.load(jobs[0].data)
    x = data.binarize_fixed(ds.test)
    values: dict[tuple[str, str], list[float]] = {}
    elbos: dict[tuple[str, str], list[float]] = {}
    for _, _, run, _ in jobs:
        label, frac, _ = run.name.rsplit("-", 2)
        model = load(run, device="cpu")
        values.setdefault((label, frac), []).append(float((model.classify(x) == ds.test_labels).float().mean()))
        elbos.setdefault((label, frac), []).append(test_elbo(model, x, None))      # U(x): Table 3's SVAE columns
    rows, pairs, elbo_rows, gaps = [], [], [], []
    for frac in dict.fromkeys(f for _, f in values):
        cells = {label: Row(label, f"test accuracy, {frac} labels", values[(label, frac)], PAPER4[label][frac])
                 for label in TABLE4}
        rows += cells.values()
        pairs.append((cells["SVAE"], cells["AA-SVAE"]))
        a, b = (Row(label, f"test ELBO U(x), {frac} labels (Table 3)", elbos[(label, frac)],
                    PAPER3_SVAE[label][frac]) for label in TABLE4)
        elbo_rows += [a, b]
        gaps.append(f"{frac}: ours {b.mean - a.mean:+.2f}, paper {b.paper - a.paper:+.2f}")
    elbo_note = ("Table 3's SVAE / AA-SVAE test ELBOs are computed here from these runs (not in the verdict): "
                 "Kingma's U(x) = E_q(c|x)[ELBO(x|c)] + H(q(c|x)), a bound on log p(x) of one fixed binarization of "
                 f"the test digits, 10 draws each; AA-SVAE minus SVAE {'; '.join(gaps)}. ")
    labelled = {frac: presets.get(f"{TABLE4['SVAE']}-{FRACTIONS[frac]}-labels").at(ctx.scale)["labelled"]
                for frac in ("1%", "10%")}
    n_lab = {frac: int((keep_labels(ds.train_labels, f, 0) >= 0).sum()) for frac, f in labelled.items()}
    runs = {f"{label} {frac}": name for (label, frac), name in table4_runs(ctx).items()}
    verdict, note = _finish(pairs, "AA-SVAE", f"The paper's gains (+0.0013, +0.0029 over 5 runs) are about "
                            f"one of its standard deviations; its 1 % is 600 labels of full MNIST, ours "
                            f"{n_lab['1%']} ({n_lab['10%']} at 10 %) of {ds.name}. " + elbo_note
                            + describe_runs(runs, ctx.scale), seeds)
    return Result(rows + elbo_rows, verdict, note)


# ---- Table 2: GAN vs IWGAN (classifier Inception Score), CGAN vs IWCGAN (conditional accuracy) ------------------

def table2_jobs(ctx: Context, out: Path) -> list[Job]:
    return preset_jobs(ctx, [(out / f"{label}-seed{{s}}", name) for label, name in TABLE2.items()])


@torch.no_grad()
def hu_table2(ctx: Context, out: Path, n: int = 5000) -> Result:
    from jointkl.eval.quality import domain_classifier, inception_score
    scale, seeds, jobs = ctx.scale, ctx.seeds, table2_jobs(ctx, out)
    ds = data.load(jobs[0].data)
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
                            f"{n} samples per run; the paper uses DCGANs on full MNIST, we use "
                            f"{nets_of(TABLE2['GAN'], scale)} on {ds.name}. " + describe_runs(TABLE2, scale), seeds)
    return Result(rows, verdict, note, figs)


# ---- the paper's temperature selection (supplement I.2) --------------------------------------------------------

def select_temperature(out: Path, scale: str = "default", temperatures=(1.0, 1.5, 3.0, 5.0), seed: int = 0,
                       workers: int | None = None) -> dict[float, float]:
    """AA-VAE trained on 10 % of the training digits at each temperature; the mean ELBO of the last 500 training
    digits (validation: never among the first 10 %) for each. The largest wins."""
    model, dataset, _, opts = preset_jobs(Context(scale, 1), [(out, f"{TABLE3['AA-VAE']}-{FRACTIONS['10%']}")])[0]
    jobs = [(model, dataset, out / f"select-T{t}", {**opts, "aa_temperature": t, "seed": seed}) for t in temperatures]
    train_many(jobs, workers)
    x = data.binarize_fixed(data.load(dataset).train[-500:])
    return {t: test_elbo(load(run, device="cpu"), x, None) for t, (_, _, run, _) in zip(temperatures, jobs)}


def _steps(name: str) -> str:
    """The steps of the preset `name` at the default scale, and at the others, in words."""
    steps = {scale: presets.get(name).at(scale)["steps"] for scale in presets.SCALES}
    return f"{steps['default']:,} steps (quick {steps['quick']:,}, full {steps['full']:,})"


_T3, _T4 = f"{TABLE3['VAE']}-{FRACTIONS['100%']}", f"{TABLE4['SVAE']}-{FRACTIONS['10%']}-labels"
_T4_AA = f"{TABLE4['AA-SVAE']}-{FRACTIONS['10%']}-labels"
_BINARIZED = ", dynamically binarized for training, one fixed binarization "
register(Table("hu-table2", "Hu Table 2: GAN vs IWGAN (Inception Score), CGAN vs IWCGAN (conditional accuracy)",
               f"{_data_text(TABLE2['GAN'])} grey digits; G and D {nets_of(TABLE2['GAN'], 'default')}, non-saturating "
               f"loss, {_steps(TABLE2['GAN'])}; IW = Hu eq. 16 weights over each batch, the only difference; the "
               f"presets {', '.join(TABLE2.values())} (the note lists their options at the scale run). Scores from a "
               "classifier trained on the same data (jointkl.eval.quality), 5,000 samples per run.", hu_table2,
               table2_jobs, seeds=2, full_data=(presets.get(TABLE2["GAN"]).data_at("full"),)))
register(Table("hu-table3", "Hu Table 3: VAE vs AA-VAE, CVAE vs AA-CVAE test ELBO on 1 %, 10 %, 100 % of the data",
               _data_text(_T3) + _BINARIZED + "of the test digits for the ELBO (10 draws each). Encoder, decoder and D "
               f"{nets_of(_T3, 'default')}, {_steps(_T3)}; AA: one model sample per data point, temperature "
               f"{AA_TEMPERATURE:g} (validation); the presets {', '.join(f'{v}-*' for v in TABLE3.values())} (the note "
               "lists their options at the scale run).", hu_table3, table3_jobs, seeds=2,
               full_data=(presets.get(_T3).data_at("full"),)))
register(Table("hu-table4", "Hu Table 4 (Table 2 right): SVAE vs AA-SVAE test accuracy, 1 % and 10 % labels; "
               "their test ELBOs (Table 3's SVAE columns)",
               _data_text(_T4) + _BINARIZED + f"of the test digits. M2 with {nets_of(_T4, 'default')}, "
               f"{_steps(_T4)}; accuracy of argmax q(c|x) and the test ELBO U(x) (10 draws); AA temperature "
               f"{presets.get(_T4_AA).options['aa_temperature']:g}; the "
               f"presets {', '.join(f'{v}-*-labels' for v in TABLE4.values())} (the note lists their options at the "
               "scale run).", hu_table4, table4_jobs, seeds=2, full_data=(presets.get(_T4).data_at("full"),)))
