"""Su Fig. 1-2: a GAN on grid25 with and without the regularizer of eq. 26, its modes over training; Fig. 2's
setting (5 D and 5 G steps per period, a new z batch for each G step) beside Fig. 1's."""
from __future__ import annotations

from pathlib import Path

import torch

from jointkl import data, presets
from jointkl.api import load
from jointkl.eval.modes import mode_stats
from jointkl.plots import save_samples
from jointkl.reproduce.base import Context, Job, Result, Row, Table, register
from jointkl.reproduce.from_presets import preset_jobs

SU_VARIANTS = {                                  # label -> preset (Su eq. 20 / eq. 26; jointkl/presets)
    "GAN (1 G step)": "gan/grid25-su-1g",
    "GAN (2 G steps)": "gan/grid25-su-2g",
    "GAN + reg (λ=5, 2 G steps)": "gan/grid25-su-reg",
    "Fig. 2: GAN (5 D + 5 G steps, new z each)": "gan/grid25-su-fig2",
    "Fig. 2: GAN + reg (λ=5, 5 D + 5 G steps, new z each)": "gan/grid25-su-fig2-reg",
}


def su_fig1_jobs(ctx: Context, out: Path) -> list[Job]:
    return preset_jobs(ctx, [(out / f"{i}-seed{{s}}", name) for i, name in enumerate(SU_VARIANTS.values())])


def su_fig1(ctx: Context, out: Path) -> Result:
    ds, seeds, rows, figs, curves = data.load("grid25"), ctx.seeds, [], [], {}
    for i, (label, name) in enumerate(SU_VARIANTS.items()):
        opts = presets.get(name).at(ctx.scale)
        steps = ctx.capped(opts["steps"])
        every = min(opts["ckpt_every"], steps)
        checks = list(range(every, steps + 1, every))
        final, worst = [], []
        curve = torch.zeros(seeds, len(checks))                           # modes at each checkpoint
        for s in range(seeds):
            for j, step in enumerate(checks):
                model = load(out / f"{i}-seed{s}", device="cpu", step=step)
                torch.manual_seed(1000 + s)
                x = model.sample(2500)                                    # VEEGAN protocol: 2,500 samples
                st = mode_stats(x, ds.meta["means"], ds.meta["std"])
                curve[s, j] = st["modes"]
            final.append(st)
            worst.append(float(curve[s, len(checks) // 2:].min()))
            if s == 0:
                fig = out / f"samples-{i}.png"
                save_samples(x, fig, ds.meta["means"], f"{label}, seed 0")
                figs.append(fig)
        curves[label] = ([c * opts.get("g_steps", 1) for c in checks], curve)     # x axis: generator updates
        rows += [Row(label, "modes (of 25)", [st["modes"] for st in final]),
                 Row(label, "% high quality", [st["high_quality"] for st in final]),
                 Row(label, "fewest modes, 2nd half of training", worst),
                 Row(label, "modes at the first checkpoint", curve[:, 0].tolist())]
    figs.insert(0, _curve_figure(out / "modes-over-steps.png", curves))
    ctrl, reg = rows[4:8], rows[8:12]            # 2 G steps without / with the regularizer
    f2, f2reg = rows[12:16], rows[16:20]         # Fig. 2's setting without / with it
    ok = reg[2].mean > ctrl[2].mean and reg[0].mean >= ctrl[0].mean
    note = (f"Su's claim (Fig. 1-2) is qualitative: the regularizer stabilizes training. Verdict on equal footing "
            f"(2 generator steps each): with the regularizer the fewest modes over the second half of training is "
            f"{reg[2].mean:.1f} vs {ctrl[2].mean:.1f} without, and the final modes {reg[0].mean:.1f} vs "
            f"{ctrl[0].mean:.1f} ({seeds} seed(s); compare the spreads). Fig. 2's claim, faster convergence with the "
            f"term when D and G take 5 steps each per period (a new z batch for each G step, G_old the period's first "
            f"G), is shown, not judged: modes at the first checkpoint ({f2reg[3].mean:.1f} with it vs {f2[3].mean:.1f} "
            f"without, a tenth of training at the default scale); final {f2reg[0].mean:.1f} vs {f2[0].mean:.1f}. The curve's x axis counts generator updates, "
            "so both settings share it. Settings: "
            + "; ".join(f"{label}: preset {name} ({presets.get(name).describe(ctx.scale)})"
                        for label, name in SU_VARIANTS.items()) + ".")
    return Result(rows, "reproduced" if ok else "not reproduced", note, figs)


def _curve_figure(path: Path, curves: dict) -> Path:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (steps, c) in curves.items():
        ax.errorbar(steps, c.mean(0), yerr=c.std(0) if c.shape[0] > 1 else None, label=label, capsize=2)
    ax.set(xlabel="generator updates", ylabel="modes captured (of 25)", ylim=(0, 26))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


register(Table("su-fig1", "Su Fig. 1-2: GAN with and without the regularizer (eq. 26), grid25",
               "grid25, MLP 3x128, latent 2, batch 256, Adam(0.5, 0.999) lr 1e-3, non-saturating loss; "
               "VEEGAN scoring of 2,500 samples (high quality = within 3 std of the nearest mode).",
               su_fig1, su_fig1_jobs))
