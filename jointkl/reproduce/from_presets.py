"""An entry's training runs from shipped presets (jointkl/presets): its settings are written once, there, and
its report describes them from there too."""
from __future__ import annotations

from pathlib import Path

from jointkl import presets
from jointkl.objectives import MODELS
from jointkl.reproduce.base import Context, Job


def preset_jobs(ctx: Context, runs: list[tuple[Path | str, str]]) -> list[Job]:
    """A `Job` per seed for each (run folder pattern with `{s}` for the seed, preset name), the preset's data and
    options at the context's scale; a run checkpoints once, at its end, unless its preset says otherwise. Presets
    of models not registered are skipped (their rows are pending)."""
    jobs = []
    for pattern, name in runs:
        p = presets.get(name)
        if p.model not in MODELS:
            continue
        opts = p.at(ctx.scale)
        jobs += [Job(p.model, p.data_at(ctx.scale), Path(str(pattern).format(s=s)),
                     {"ckpt_every": opts["steps"], **opts, "seed": s}) for s in range(ctx.seeds)]
    return jobs


def describe_runs(runs: dict[str, str], scale: str) -> str:
    """The training settings of an entry's runs at `scale`, read from their presets ({label: preset name}), as
    text for its report: the data and the options all of them share, once, then each label's preset and the
    options of its own."""
    ps = {label: presets.get(name) for label, name in runs.items()}
    opts = {label: p.at(scale) for label, p in ps.items()}
    first = next(iter(opts.values()))
    shared = {k: v for k, v in first.items() if all(k in o and o[k] == v for o in opts.values())}
    datas = {p.data_at(scale) for p in ps.values()}
    one_data = len(datas) == 1

    def own(label: str) -> str:
        rest = presets.describe_options({k: v for k, v in opts[label].items() if k not in shared})
        said = ", ".join(filter(None, [f"on {ps[label].data_at(scale)}" if not one_data else "", rest]))
        return f"{label}: preset {ps[label].name}" + (f" ({said})" if said else "")

    head = ", ".join(filter(None, [f"on {datas.pop()}" if one_data else "",
                                   f"every run {presets.describe_options(shared)}" if shared else ""]))
    return f"Settings at the {scale} scale (jointkl/presets): " + "; ".join(filter(None, [head, *map(own, runs)])) + "."


def nets_of(name: str, scale: str) -> str:
    """The networks the preset `name` trains at `scale`, in words: the papers' conv nets or MLPs (layers x units)."""
    o = presets.get(name).at(scale)
    return "DCGAN-style conv nets" if o.get("arch") == "dcgan" else f"MLPs {o['layers']}x{o['hidden']}"
