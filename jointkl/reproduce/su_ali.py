"""Su's three ALI generator losses (eqs. 41-43) on grid25, and the VEEGAN mode scoring shared with DALI Table 2."""
from __future__ import annotations

from pathlib import Path

import torch

from jointkl import data, presets
from jointkl.api import load
from jointkl.eval.modes import covered_modes, expected_modes, mode_map, mode_stats
from jointkl.plots import save_latent_cells, save_samples
from jointkl.reproduce.base import Context, Job, Result, Row, Table, diverged, register
from jointkl.reproduce.from_presets import preset_jobs

ALI_LOSSES = {"ALI minimax (eq. 42)": "minimax", "ALI nonsaturating (eq. 43)": "nonsaturating",
              "ALI vi (eq. 41)": "vi"}                               # label -> loss; preset ali/grid25-su-LOSS
LIM = 3.5                                                                 # latent figure: z in [-3.5, 3.5]^2


@torch.no_grad()
def grid_rows(out: Path, label: str, runs: list[Path], paper: tuple[float | None, float | None] = (None, None),
              expected: bool = False):
    """Modes captured and % high quality of 2,500 samples per run (VEEGAN protocol), and a list of figures
    (the first seed's scatter). `expected`: two more rows from 100,000 samples, the mean modes over 2,500-sample
    draws and the modes holding at least 1 % of the samples (`covered_modes`), and a second figure, the first
    seed's latent cells."""
    ds, stats, figs, failed = data.load("grid25"), [], [], []
    means, std = ds.meta["means"], ds.meta["std"]
    for s, run in enumerate(runs):
        if diverged(run):                                                 # no generator left: nothing captured
            stats.append({"modes": 0, "high_quality": 0.0, "expected": 0.0, "covered": 0})
            failed.append(str(s))
            continue
        torch.manual_seed(1000 + s)
        net = load(run, device="cpu")
        x = net.sample(2500)                                              # (2500, 2)
        stats.append(mode_stats(x, means, std))
        if expected:
            pool = net.sample(100_000)                                    # (100000, 2)
            stats[-1]["expected"] = expected_modes(pool, means, std)
            stats[-1]["covered"] = covered_modes(pool, means, std)
        if not figs:
            figs.append(out / f"samples-{run.name}.png")
            save_samples(x, figs[0], means, f"{label}, seed {s}")
            if expected and net.latent_dim == 2:                          # which z goes to which mode
                g = torch.linspace(-LIM, LIM, 300)
                z = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)   # (90000, 2)
                figs.append(out / f"latent-{run.name}.png")
                save_latent_cells(mode_map(net.decode(z), means, std).reshape(300, 300), LIM, figs[-1],
                                  f"{label}, seed {s}: z coloured by its mode")
    if failed:
        label += f" (diverged in seed {', '.join(failed)}: counted as 0)"
    rows = [Row(label, "modes (of 25)", [st["modes"] for st in stats], paper[0]),
            Row(label, "% high quality", [st["high_quality"] for st in stats], paper[1])]
    if expected:
        rows += [Row(label, "modes, mean over draws", [st["expected"] for st in stats], None),
                 Row(label, "modes holding >= 1 % each", [st["covered"] for st in stats], None)]
    return rows, figs


def _steps(ctx: Context) -> int:
    return presets.get("ali/grid25-su-vi").at(ctx.scale)["steps"]


def _runs(ctx: Context, out: Path) -> dict[str, list[Path]]:
    return {label: [out / f"{loss}-seed{s}" for s in range(ctx.seeds)] for label, loss in ALI_LOSSES.items()}


def su_ali_jobs(ctx: Context, out: Path) -> list[Job]:
    return preset_jobs(ctx, [(out / f"{loss}-seed{{s}}", f"ali/grid25-su-{loss}") for loss in ALI_LOSSES.values()])


def su_ali(ctx: Context, out: Path) -> Result:
    """Su: "(41) has the same performance as (42) and (43)". The three losses, same nets and seeds."""
    steps, seeds, runs = _steps(ctx), ctx.seeds, _runs(ctx, out)
    rows, figs = [], []
    for label, rs in runs.items():
        r, f = grid_rows(out, label, rs)
        rows, figs = rows + r, figs + f
    inside = []
    for m in range(2):                                                    # modes, then % high quality
        others = rows[m].ours + rows[2 + m].ours                          # minimax and nonsaturating seeds
        inside.append(min(others) <= rows[4 + m].mean <= max(others))
    note = (f"Su gives no numbers. Reproduced if the vi loss's mean modes and mean % high quality both lie "
            f"within the range of the minimax and nonsaturating seeds ({ctx.capped(steps)} steps, {seeds} seeds, Gaussian "
            "encoder, MLPs 3x128, latent 2). Under vi the encoder's gradient is exactly minus the minimax one "
            "(tests/objectives/test_ali.py): the encoder pushes its pairs away from the generator's and D separates them.")
    return Result(rows, "reproduced" if all(inside) else "not reproduced", note, figs)


register(Table("su-ali", "Su eqs. 41-43: ALI's three generator losses on grid25",
               "grid25, Gaussian encoder/decoder ALI, VEEGAN scoring of 2,500 samples.", su_ali, su_ali_jobs))
