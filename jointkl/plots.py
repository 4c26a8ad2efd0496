"""Figures written during training and into reports: sample grids for images, scatter plots for 2-D."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


PAD = (0.3, 0.55, 0.85)   # the gaps of an image grid: a colour, so no pixel of a binary or grey image can match it


def image_grid(x: torch.Tensor, ncol: int | None = None, pad: tuple[float, float, float] = PAD) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) in [0, 1] -> one (rows*H, cols*W, 3) RGB array with 1-pixel gaps of colour
    `pad` (grey images are drawn in grey on it)."""
    x = x.detach().float().cpu().clamp(0, 1)
    if x.dim() == 3:
        x = x[:, None]
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x                       # (N, 3, H, W)
    n, c, h, w = x.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    grid = torch.tensor(pad, dtype=torch.float32)[:, None, None].repeat(1, nrow * (h + 1) + 1, ncol * (w + 1) + 1)
    for i in range(n):
        r, col = divmod(i, ncol)
        grid[:, 1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + col * (w + 1): 1 + col * (w + 1) + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def save_samples(x: torch.Tensor, path: str | Path, means: torch.Tensor | None = None, title: str = "") -> bool:
    """Save samples as an image grid (image-shaped data) or a scatter plot (2-D data). False if neither."""
    x = x.detach().float().cpu()
    fig = None
    if x.dim() == 4 or (x.dim() == 3 and x.shape[-1] > 2):
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(image_grid(x), interpolation="nearest")
        ax.axis("off")
    elif x.dim() == 2 and x.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
        if means is not None:
            ax.scatter(means[:, 0].cpu(), means[:, 1].cpu(), s=20, c="red", marker="x")
        ax.set_aspect("equal")
    if fig is None:
        return False
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def save_latent_cells(cells: torch.Tensor, lim: float, path: str | Path, title: str = "") -> None:
    """A 2-D latent grid (H, W) over [-lim, lim]^2 coloured by the mode each z decodes to; -1 (not near any
    mode) is white. Shows how a generator splits its prior among the modes."""
    cells = np.ma.masked_less(cells.cpu().numpy(), 0)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cells, origin="lower", extent=(-lim, lim, -lim, lim), cmap="tab20", interpolation="nearest")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_curves(rows: list[dict], path: str | Path, title: str = "") -> None:
    """Loss curves from metrics.csv rows (one line per column)."""
    keys = [k for k in rows[0] if k != "step"] if rows else []
    fig, ax = plt.subplots(figsize=(5, 3))
    steps = [float(r["step"]) for r in rows]
    for k in keys:
        ax.plot(steps, [float(r[k]) if r[k] != "" else np.nan for r in rows], label=k, lw=1)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_entry_curves(csvs: list[Path], path: str | Path, root: Path, max_legend: int = 12) -> bool:
    """Every run's player losses (`PLAYER/loss` columns of its metrics.csv) over steps, one panel per player,
    one line per run (labelled by its folder under `root`), for a reproduction entry. False if no run logged."""
    import csv
    runs = []
    for p in csvs:
        with open(p) as f:
            rows = list(csv.DictReader(f))
        if rows:
            runs.append((str(p.parent.relative_to(root)), rows))
    panels = sorted({k for _, rows in runs for k in rows[0] if k.endswith("/loss")})
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes[0], panels):
        for i, (label, rows) in enumerate(runs):
            if key in rows[0]:
                vals = [float(r[key]) if r[key] not in ("", None) else np.nan for r in rows]
                ax.plot([float(r["step"]) for r in rows], vals, lw=1, marker="." if len(rows) < 5 else None,
                        color=colors[i % len(colors)])
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    if len(runs) <= max_legend:             # one colour per run across the panels
        fig.legend([plt.Line2D([], [], color=colors[i % len(colors)]) for i in range(len(runs))],
                   [label for label, _ in runs], fontsize=6, loc="lower center", ncol=min(len(runs), 4))
        fig.subplots_adjust(bottom=0.2 + 0.05 * ((len(runs) - 1) // 4))
    fig.suptitle(f"training losses of {len(runs)} run(s)", fontsize=9, y=1.03)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return True


def save_vs_paper(rows: list, path: str | Path, title: str = "") -> bool:
    """Ours beside the paper's numbers, one panel per metric (their scales differ), one line per row that has a
    paper value: the paper's value (a hollow diamond), each seed's value (grey dots) and their mean ± one std (a
    blue dot and bar). `rows`: objects with `method`, `metric`, `ours` (one value per seed), `paper` and `better`
    (`jointkl.reproduce.Row`). False (nothing drawn) when no row has a paper value."""
    metrics: dict[str, list] = {}
    for r in rows:
        if r.paper is not None:
            metrics.setdefault(r.metric, []).append(r)
    if not metrics:
        return False
    heights = [len(rs) + 1.5 for rs in metrics.values()]     # a row's line, plus the panel's title and axis
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7, 0.3 * sum(heights) + 0.8), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, (metric, rs) in zip(axes[:, 0], metrics.items()):
        y = np.arange(len(rs))[::-1]                          # the table's order, top to bottom
        for yi, r in zip(y, rs):
            ours = np.asarray(r.ours, float)
            ax.scatter(ours, np.full(len(ours), yi - 0.12), s=10, c="0.55", zorder=2)
            if len(ours):
                ax.errorbar(np.mean(ours), yi - 0.12, xerr=np.std(ours, ddof=1) if len(ours) > 1 else None,
                            fmt="o", color="C0", ms=6, capsize=3, zorder=3)
        ax.scatter([r.paper for r in rs], y + 0.12, marker="D", s=36, facecolors="none", edgecolors="k", zorder=3)
        ax.set_yticks(y, [r.method if r.ours else f"{r.method} (ours pending)" for r in rs], fontsize=8)
        ax.set_ylim(-0.7, len(rs) - 0.3)
        better = {r.better for r in rs}
        ax.set_title(metric + (f" ({better.pop()} is better)" if len(better) == 1 else ""), fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", lw=0.3)
    handles = [plt.Line2D([], [], ls="", marker="D", mfc="none", mec="k", label="paper"),
               plt.Line2D([], [], ls="", marker="o", color="C0", label="ours: seed mean ± std"),
               plt.Line2D([], [], ls="", marker=".", color="0.55", label="ours: each seed")]
    fig.legend(handles=handles, fontsize=7, loc="outside upper center", ncol=3, frameon=False, title=title,
               title_fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
