"""The `jointkl` command: train, sample, eval, reproduce, list. Errors are one line and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import os
import sys
import typing
from pathlib import Path

EPILOG = ("Options key=value go to the model's config or the trainer's (`jointkl list models MODEL` lists them "
          "with their meanings). Settings come from, each beating the one before: --config FILE or --preset NAME "
          "(without either, the preset MODEL/DATA where one ships: `jointkl list presets`), then key=value "
          "options and --steps/--seed.")


IMPORT_HELP = ("import a module of your own models first: a module name (from the current directory or sys.path) "
               "or a .py file; repeatable (docs/write-your-own-model.md)")


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE", help=IMPORT_HELP)


def _parser() -> argparse.ArgumentParser:
    from jointkl import __version__
    p = argparse.ArgumentParser(prog="jointkl", description="Deep generative models as one joint KL.")
    p.add_argument("--version", action="version", version=f"jointkl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model", epilog=EPILOG)
    t.add_argument("model", nargs="?", help="a registered model (jointkl list models); may come from --config")
    t.add_argument("--data", help="a registered dataset or a .npy/.npz file (default grid25; "
                   "with --resume, the run's own data)")
    t.add_argument("--steps", type=int, help="outer training steps")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--out", help="run directory (default runs/MODEL-DATA-seedS)")
    t.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--data-dir", help="folder of the file datasets mnist/svhn/cifar10/celeba (default $JOINTKL_DATA or ./data)")
    t.add_argument("--config", help="a settings YAML file (a run's config.yaml, or what --print-config prints)")
    t.add_argument("--preset", help="a shipped setting, e.g. dali/grid25 (jointkl list presets); 'none': the "
                   "model's own defaults even where a preset for MODEL/DATA ships")
    t.add_argument("--print-config", action="store_true",
                   help="print the resolved settings (a valid --config file) and train nothing")
    t.add_argument("options", nargs="*", metavar="key=value", help="e.g. latent_dim=8 lr=1e-3 reg=5")
    _add_import(t)

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run", help="a run folder (what `jointkl train --out` wrote)")
    s.add_argument("--n", type=int, default=64, help="how many samples (default 64)")
    s.add_argument("--out", required=True, help="FILE.npy (array [N, *data_shape]) or FILE.png (grid/scatter)")
    s.add_argument("--seed", type=int, default=0, help="random seed of the draws (default 0)")
    s.add_argument("--force", action="store_true", help="overwrite an existing output file")
    _add_import(s)

    e = sub.add_parser("eval", help="evaluate a run on its test split")
    e.add_argument("run", help="a run folder; its newest checkpoint that passes its checksums is evaluated")
    e.add_argument("--force", action="store_true", help="overwrite the run's existing eval.json")
    e.add_argument("--metrics", help="comma-separated subset of: elbo,iwae,ais,is,fid,is_inception,fid_inception,"
                   "modes,recon,accuracy (default: the cheap ones that apply: elbo,iwae,modes,recon,accuracy)")
    e.add_argument("--k", type=int, default=100, help="importance samples for iwae (default 100)")
    e.add_argument("--n", type=int, default=2500, help="samples for sample-based metrics (default 2500)")
    e.add_argument("--ais-steps", type=int, default=1000, help="AIS intermediate distributions (default 1000)")
    e.add_argument("--ais-chains", type=int, default=5, help="AIS chains per example (default 5)")
    e.add_argument("--ais-n", type=int, help="test examples for AIS (default: the whole test split)")
    e.add_argument("--seed", type=int, default=0, help="random seed of the evaluation's draws (default 0)")
    e.add_argument("--data", help="evaluate on this data's test split (default: the run's own data)")
    e.add_argument("--data-dir", help="folder of the file datasets (default $JOINTKL_DATA or ./data)")
    _add_import(e)

    r = sub.add_parser("reproduce", help="run the papers' tables and write report.md/report.html")
    r.add_argument("tables", nargs="*", help="table ids (default: all; see jointkl list tables)")
    size = r.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="scale",
                      help="every entry in about 10 minutes in all on 2 CPU cores (few steps, one seed)")
    size.add_argument("--full", action="store_const", const="full", dest="scale",
                      help="the papers' data sets and sizes (files from --data-dir; hours on a CPU)")
    r.add_argument("--data-dir", help="folder of the file datasets (default $JOINTKL_DATA or ./data)")
    r.add_argument("--seeds", type=int, help="seeds per entry (default: each entry's own)")
    r.add_argument("--out", default="runs/reproduce", help="output directory (default runs/reproduce)")
    r.add_argument("--estimate", action="store_true",
                   help="print each entry's expected training time (a few probed steps) and stop; trains nothing")
    r.add_argument("--report-only", action="store_true",
                   help="train nothing: write the report from the runs already in --out; an entry with runs "
                   "missing names them instead of scoring")
    r.add_argument("--results-page", metavar="FILE.md",
                   help="also write the results as a docs page (figures in a folder beside it) that holds no "
                   "clock or timing: made again from the same runs, it is the same text; the sections of entries not "
                   "run this time stay as they were (docs/results.md)")
    x = r.add_argument_group("where the training runs execute (docs/cluster.md)")
    x.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                   help="local: a process pool on this machine, one thread per run (default); ray: one Ray task "
                   "per run (pip install 'jointkl[ray]'); slurm: one SLURM job per run through submitit (pip "
                   "install 'jointkl[slurm]'). Runs already cached in --out are never sent again")
    x.add_argument("--ray-address", metavar="ADDRESS",
                   help="ray: the cluster to join (default: the running one `address=auto` finds, else a local Ray)")
    x.add_argument("--slurm-partition", metavar="NAME", help="slurm: the partition of the jobs (default: the cluster's)")
    x.add_argument("--slurm-time", metavar="TIME",
                   help="slurm: each job's time limit, in minutes (90), H:MM:SS or D-HH:MM:SS (default 240 minutes)")
    x.add_argument("--slurm-logs", metavar="FOLDER",
                   help="slurm: folder of submitit's logs and pickles, %%j = job id (default OUT/slurm-logs/%%j)")
    x.add_argument("--cpus-per-run", type=int, metavar="N",
                   help="ray, slurm: CPUs per training run, which trains on that many threads (default 1)")
    x.add_argument("--gpus-per-run", type=float, metavar="N",
                   help="ray, slurm: GPUs per training run (default 0; ray takes fractions such as 0.5)")

    lst = sub.add_parser("list", help="list models, presets, data or tables")
    lst.add_argument("what", choices=["models", "presets", "data", "tables"])
    lst.add_argument("name", nargs="?", help="with models: one model, each option with its default and meaning")
    _add_import(lst)
    return p


def _train(a) -> None:
    from jointkl.run import launch
    from jointkl.training.config import parse_overrides
    if a.model and "=" in a.model:       # `--preset NAME key=value`: argparse took the first option for MODEL
        a.model, a.options = None, [a.model, *a.options]
    options = parse_overrides(a.options)
    options.update({k: getattr(a, k) for k in ("steps", "seed") if getattr(a, k) is not None})  # flags win
    no_preset = (a.preset or "").lower() == "none"
    preset = None if no_preset else a.preset
    if a.print_config:
        return _print_config(a.model, a.data, options, preset, a.config, not no_preset)
    # one process: jointkl.train; under torchrun every process runs this and rank 0 alone writes the run
    model = launch(a.model, data=a.data, out=a.out, force=a.force, resume=a.resume, preset=preset, config=a.config,
                   auto_preset=not (no_preset or a.resume), **options)
    # a resumed run already at its steps trains nothing: jointkl.run said so (on stderr), nothing to add
    if int(os.environ.get("RANK", "0")) == 0 and not getattr(model, "already_trained", False):
        print(f"trained {model.name}; run in {model.run_dir}")


def _print_config(model, data, options, preset, config, auto) -> None:
    """The settings a train command would use, fully resolved, in the --config format."""
    import yaml
    from jointkl import objectives
    from jointkl.run import DEFAULT_DATA, data_ref, settings
    from jointkl.training.config import split_options, to_dict
    model, data, options, chosen = settings(model, data, options, preset, config, auto)
    tcfg, mcfg = split_options(options, objectives.get(model).Config, model)
    text = yaml.safe_dump({"model": model, "data": data_ref(DEFAULT_DATA if data is None else data),
                           "options": {**to_dict(mcfg), **to_dict(tcfg)}}, sort_keys=False)
    print((f"# from preset {chosen}\n" if chosen else "") + text, end="")


def _sample(a) -> None:
    import numpy as np
    import torch
    from jointkl.api import load
    from jointkl.errors import JointKLError
    from jointkl.plots import save_samples
    out = Path(a.out)
    if out.suffix not in (".npy", ".png"):
        raise JointKLError(f"--out must end in .npy or .png; got {out.name}")
    if out.exists() and not a.force:
        raise JointKLError(f"{out} exists; pass --force to overwrite it")
    if a.n < 1:
        raise JointKLError(f"--n must be at least 1; got {a.n}")
    model = load(a.run)
    torch.manual_seed(a.seed)
    x = model.sample(a.n).cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, x.numpy())
    elif not save_samples(x, out, _data_means(a.run) if x.dim() == 2 else None, title=f"{model.name} samples"):
        raise JointKLError(f"samples of shape {tuple(x.shape[1:])} cannot be drawn as a picture; use a .npy file")
    print(f"wrote {a.n} samples of shape {tuple(x.shape[1:])} to {out}")


def _data_means(run: str):
    """The mixture means of a run's data (`meta["means"]` of the toy sets), drawn on a 2-D scatter as the
    training grids draw them; None where the data has none or cannot be found again (the scatter goes without)."""
    from jointkl.errors import JointKLError
    from jointkl.run import dataset, read_config
    try:
        return dataset(read_config(Path(run))["data"]).meta.get("means")
    except JointKLError:
        return None


def _eval(a) -> None:
    import dataclasses
    from jointkl.data import binarize_fixed
    from jointkl.run import dataset, load, read_config
    from jointkl.eval.suite import evaluate
    from jointkl.errors import JointKLError
    out = Path(a.run) / "eval.json"
    if out.exists() and not a.force:                 # checked first: nothing is computed to be thrown away
        raise JointKLError(f"{out} exists; pass --force to overwrite it (or copy it away first)")
    model, config = load(a.run), read_config(Path(a.run))
    ds = dataset(a.data or config["data"])
    # a model trained on binarized data is scored on binary data: one fixed binarization (seed 0) of the test
    # split, the reproduction entries' protocol; grey pixels under a Bernoulli decoder are not a likelihood
    binarized = config.get("train", {}).get("binarize", "none") != "none"
    if binarized:
        ds = dataclasses.replace(ds, test=binarize_fixed(ds.test))
    metrics = [m.strip() for m in a.metrics.split(",")] if a.metrics else None
    ais = {"steps": a.ais_steps, "chains": a.ais_chains, **({"n": a.ais_n} if a.ais_n else {})}
    res = evaluate(model, ds, metrics, k=a.k, n=a.n, seed=a.seed, ais=ais)
    about = {"checkpoint_step": model.checkpoint_step, "data": ds.name, "split": "test",
             "examples": int(ds.test.shape[0]), "test_binarized": "fixed, seed 0" if binarized else "no",
             "n": a.n, "k": a.k, "seed": a.seed, **({"ais": ais} if any(m.startswith("ais") for m in res) else {})}
    out.write_text(json.dumps({**about, "metrics": res}, indent=1))
    split = f"{about['examples']} examples" + (", one fixed binarization (seed 0)" if binarized else "")
    print(f"{a.run} at step {about['checkpoint_step']}, {ds.name} test split ({split}), "
          f"n={a.n} samples, k={a.k} importance draws, seed {a.seed}:")
    for k, v in res.items():
        print(f"{k:>16s}  {v:.4f}" if isinstance(v, float) else f"{k:>16s}  {v}")


def _list(a) -> None:
    if a.name is not None and a.what != "models":
        from jointkl.errors import JointKLError
        raise JointKLError(f"`jointkl list {a.what}` takes no name; `jointkl list models MODEL` describes one model")
    if a.what == "models" and a.name:
        from dataclasses import fields
        from jointkl import objectives
        from jointkl.objectives.registry import summary
        from jointkl.training.config import TrainConfig, option_help
        cls = objectives.get(a.name)
        print(f"{a.name}: {summary(cls)}")
        for title, cfg in ((f"{a.name} options", cls.Config), ("trainer options (every model)", TrainConfig)):
            print(f"\n{title}:")
            meaning, hints = option_help(cfg), typing.get_type_hints(cfg)
            for f in fields(cfg):
                choices = typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is typing.Literal else ()
                help_ = "; ".join(filter(None, [" | ".join(choices), meaning[f.name]]))
                print(f"  {f.name}={f.default}" + (f"  # {help_}" if help_ else ""))
    elif a.what == "presets":
        from jointkl import presets
        width = max(map(len, presets.names()), default=0)
        for name in presets.names():
            print(f"{name:{width}s}  {presets.get(name).about}")
    elif a.what == "models":
        from jointkl.objectives import MODELS
        from jointkl.objectives.registry import builtin, load_entry_points, summary
        from dataclasses import fields
        from jointkl.training.config import TrainConfig
        load_entry_points()                          # installed packages' models too
        opts = lambda cfg: " ".join(f"{f.name}={f.default}" for f in fields(cfg))  # noqa: E731
        for name, cls in sorted(MODELS.items()):
            mine = "" if builtin(cls) else f"  [from {cls.__module__}]"
            print(f"{name:12s} {summary(cls)}{mine}\n{'':12s} options: {opts(cls.Config)}")
        print(f"\ntrainer options (every model): {opts(TrainConfig)}")
    elif a.what == "data":
        from jointkl.data import DESCRIPTIONS
        for name, desc in sorted(DESCRIPTIONS.items()):
            print(f"{name:14s} {desc}")
    else:
        from jointkl.reproduce import ORDER, TABLES
        for name in ORDER:
            print(f"{name:16s} {TABLES[name].title}")


def _reproduce(a) -> None:
    from jointkl.reproduce import make_executor, run_tables
    executor = make_executor(a.executor, out=a.out, address=a.ray_address, partition=a.slurm_partition,
                             minutes=a.slurm_time, log_folder=a.slurm_logs, cpus_per_run=a.cpus_per_run,
                             gpus_per_run=a.gpus_per_run)
    run_tables(a.tables, Path(a.out), seeds=a.seeds, scale=a.scale or "default", estimate_only=a.estimate,
               executor=executor, report_only=a.report_only, results_page=a.results_page)


def main(argv: list[str] | None = None) -> int:
    from jointkl.errors import JointKLError
    parser = _parser()
    # argparse gives a nargs="*" positional only the words right after `model`; key=value words after
    # --data/--steps/... come back as extras and are options too. Anything else is still rejected.
    if not (sys.argv[1:] if argv is None else argv):     # bare `jointkl`: what it can do
        parser.print_help()
        return 0
    a, extra = parser.parse_known_args(argv)
    if extra:
        if a.command != "train" or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        a.options = [*a.options, *extra]
    if getattr(a, "data_dir", None):
        os.environ["JOINTKL_DATA"] = a.data_dir
    try:
        if getattr(a, "imports", None):              # a user's models join the registry first
            from jointkl.objectives.registry import import_models
            for spec in a.imports:
                import_models(spec)
        {"train": _train, "sample": _sample, "eval": _eval, "list": _list, "reproduce": _reproduce}[a.command](a)
    except JointKLError as e:
        if int(os.environ.get("RANK", "0")) == 0:     # under torchrun, rank 0 alone speaks
            print(f"jointkl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:   # a run stopped by SIGINT/SIGTERM (trainer.Interrupted) says how to resume
        code = getattr(e, "exit_code", 130)
        if int(os.environ.get("RANK", "0")) == 0:
            msg = str(e) or "interrupted; a training run continues with `jointkl train MODEL --out RUN --resume`"
            print(f"jointkl: {msg}", file=sys.stderr)
        return code
    except BrokenPipeError:                          # `jointkl ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit's flush
        return 0
    except OSError as e:                             # one the command did not word itself
        if int(os.environ.get("RANK", "0")) == 0:
            where = f" ({e.filename})" if e.filename else ""
            what = " ".join(str(e.strerror or e).split())
            print(f"jointkl: error: {what}{where}; check the path, its permissions and the free space",
                  file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
