"""An entry's training runs from shipped presets (jointkl/presets): its settings are written once, there."""
from __future__ import annotations

from pathlib import Path

from jointkl import presets
from jointkl.objectives import MODELS
from jointkl.reproduce.base import Context, Job


def preset_jobs(ctx: Context, runs: list[tuple[Path | str, str]]) -> list[Job]:
    """A `Job` per seed for each (run folder pattern with `{s}` for the seed, preset name), the preset's options
    at the context's scale; a run checkpoints once, at its end, unless its preset says otherwise. Presets of
    models not registered are skipped (their rows are pending)."""
    jobs = []
    for pattern, name in runs:
        p = presets.get(name)
        if p.model not in MODELS:
            continue
        opts = p.at(ctx.scale)
        jobs += [Job(p.model, p.data, Path(str(pattern).format(s=s)),
                     {"ckpt_every": opts["steps"], **opts, "seed": s}) for s in range(ctx.seeds)]
    return jobs
