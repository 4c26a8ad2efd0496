"""Data-parallel training (jointkl.training.distributed) on 2 CPU processes with gloo.

What is exactly comparable with one process: the data (each rank takes its half of the same global batch)
and the averaged gradient; the noise is not, since each rank draws its own. So the comparison with one
process replaces the noise source by one that hands rank r rows [r*b, (r+1)*b) of the draw one process
would make for the whole global batch (`_sliced_noise`): with it, 2 ranks must equal 1 process up to float
rounding (the mean over 2b rows vs the mean of two means over b). With real noise, the ranks must still hold
bitwise-identical parameters while drawing different noise.
"""
from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from jointkl import objectives
from jointkl.run import dataset
from jointkl.errors import JointKLError
from jointkl.objectives.base import Player
from jointkl.training.config import split_options
from jointkl.training.trainer import Trainer

WORLD = 2
TRAIN = dict(steps=6, batch_size=32, log_every=2, ckpt_every=3, device="cpu")
NET = dict(hidden=16, layers=1, latent_dim=2)
CASES = {   # name: (model, data, options, sliced noise?)
    "vae": ("vae", "binary2x2", NET, True),
    "gan": ("gan", "grid25", dict(NET, reg=5.0, g_steps=2, d_steps=2), True),
    "vae_dynamic": ("vae", "binary2x2", dict(NET, binarize="dynamic"), False),
    "em": ("em", "grid25", dict(components=4, steps=3, batch_size=1000), False),
}


@contextmanager
def _sliced_noise(rank: int, world: int):
    """The k-th draw of shape (b, ...) gives rows [rank*b, (rank+1)*b) of a (world*b, ...) draw seeded by k."""
    import torch.distributions.normal as normal
    randn, std_normal, count = torch.randn, normal._standard_normal, itertools.count()

    def draw(shape, dtype=None, device=None):
        b = shape[0]
        g = torch.Generator().manual_seed(next(count))
        return randn((world * b, *shape[1:]), generator=g, dtype=dtype)[rank * b:(rank + 1) * b].to(device)

    torch.randn = lambda *size, dtype=None, device=None, **_: draw(
        tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size, dtype, device)
    normal._standard_normal = lambda shape, dtype=None, device=None: draw(tuple(shape), dtype, device)
    try:
        yield
    finally:
        torch.randn, normal._standard_normal = randn, std_normal


def _train(name: str, run_dir: Path, rank: int = 0, world: int = 1, **extra) -> dict:
    model, data, opts, sliced = CASES[name]
    cls = objectives.get(model)
    tcfg, mcfg = split_options({**TRAIN, **opts, **extra}, cls.Config, model)
    ds = dataset(data)
    torch.manual_seed(tcfg.seed)
    net = cls(mcfg, ds.shape, ds.kind)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    if rank == 0:                     # as api.train makes it (rank 0 only)
        run_dir.mkdir(parents=True, exist_ok=True)
    with _sliced_noise(rank, world) if sliced else _nothing():
        Trainer(net, ds, tcfg, run_dir).fit()
    return {"params": {k: v.clone() for k, v in net.state_dict().items()}, "init": init, "rng": torch.get_rng_state()}


@contextmanager
def _nothing():
    yield


class Killed(Exception):
    pass


def _errors(tmp: Path) -> dict[str, str]:
    """The two refusals of a 2-process run: a global batch that does not split, a minibatch closed-form player."""
    out = {}
    try:
        _train("vae", tmp / "odd", batch_size=33)
    except JointKLError as e:
        out["odd batch"] = str(e)
    ds = dataset("grid25")
    em = objectives.get("em")(objectives.get("em").Config(), ds.shape, ds.kind)
    em.players = lambda: [Player("em", [], closed_form=True, full_batch=False)]
    try:
        Trainer(em, ds, split_options(dict(TRAIN), em.Config, "em")[0], tmp / "em-mini")
    except JointKLError as e:
        out["minibatch closed form"] = str(e)
    return out


def _resume(tmp: Path, rank: int) -> dict:
    """A 2-process GAN killed at step 5 (checkpoint at 3) and resumed, beside the uninterrupted run. Rank 1
    gets a run directory of its own, which must stay unwritten: it resumes from what rank 0 sends."""
    opts = dict(NET, steps=7, reg=5.0, g_steps=2)
    run = lambda d, resume=False: _resume_run(d if rank == 0 else tmp / f"rank1-{d.name}", opts, resume)  # noqa: E731
    full = run(tmp / "full")
    original = Trainer.train_step

    def dying(self):
        if self.step == 5:
            raise Killed
        return original(self)
    Trainer.train_step = dying
    try:
        run(tmp / "cut")
    except Killed:
        pass
    finally:
        Trainer.train_step = original
    return {"full": full, "resumed": run(tmp / "cut", resume=True),
            "rank1 wrote": any((tmp / f"rank1-{n}").exists() for n in ("full", "cut"))}


def _resume_run(run_dir: Path, opts: dict, resume: bool) -> dict:
    cls = objectives.get("gan")
    tcfg, mcfg = split_options({**TRAIN, **opts}, cls.Config, "gan")
    ds = dataset("grid25")
    torch.manual_seed(tcfg.seed)
    net = cls(mcfg, ds.shape, ds.kind)
    if not run_dir.name.startswith("rank1-"):
        run_dir.mkdir(parents=True, exist_ok=True)
    Trainer(net, ds, tcfg, run_dir).fit(resume=resume)
    return {k: v.clone() for k, v in net.state_dict().items()}


def _cli(tmp: Path, rank: int) -> list[tuple[int, str, str]]:
    """`jointkl train` as torchrun's processes run it (rank 1 follows rank 0): train, resume with more steps,
    and a refused run; (exit code, stdout, stderr) of each."""
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO
    from jointkl.cli import main
    out, tiny = tmp / "cli", [f"{k}={v}" for k, v in {**TRAIN, **NET}.items() if k != "steps"]
    results = []
    for argv in (["--data", "binary2x2", "--steps", "4", "--out", out, *tiny], ["--out", out, "--resume", "--steps", "6"],
                 ["--data", "binary2x2", "--out", out]):
        o, e = StringIO(), StringIO()
        with redirect_stdout(o), redirect_stderr(e):
            code = main(["train", "vae", *map(str, argv)])
        results.append((code, o.getvalue(), e.getvalue()))
    return results


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    tmp = Path(tmp)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))   # a hang fails the test instead
    try:
        out = {name: _train(name, tmp / f"{name}-2p", rank, world) for name in CASES}
        out["errors"] = _errors(tmp)
        out["resume"] = _resume(tmp / "resume", rank)
        out["cli"] = _cli(tmp, rank)
        torch.save(out, tmp / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Every 2-process run of this file, in one spawn (starting processes is the slow part)."""
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(WORLD, _free_port(), str(tmp)), nprocs=WORLD, join=True)
    return tmp, [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", list(CASES))
def test_ranks_hold_identical_parameters(two_ranks, name):
    _, ranks = two_ranks
    _assert_equal(ranks[0][name]["params"], ranks[1][name]["params"])


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_two_ranks_equal_one_process_with_the_same_global_batch_and_noise(two_ranks, tmp_path, name):
    tmp, ranks = two_ranks
    one, init = _train(name, tmp_path / "one", 0, 1)["params"], ranks[0][name]["init"]
    two = ranks[0][name]["params"]
    # measured over seeds 0-2: max |two - one| <= 3e-8 for both models (atol 1e-5 leaves 300x), while training
    # moved the weights by >= 6e-3; with the ranks' slices swapped the VAE differs by >= 6e-3 (noise is paired
    # with rows), so the comparison sees the sharding
    for k in one:
        assert torch.allclose(two[k], one[k], rtol=0, atol=1e-5), (k, (two[k] - one[k]).abs().max())
    assert any(not torch.allclose(one[k], init[k], rtol=0, atol=1e-4) for k in one)   # and they did train
    # the metrics rank 0 logs are the global batch's: the same rows as one process's
    rows = lambda d: [list(map(float, r.split(","))) for r in (d / "metrics.csv").read_text().splitlines()[1:]]  # noqa: E731
    assert torch.allclose(torch.tensor(rows(tmp / f"{name}-2p")), torch.tensor(rows(tmp_path / "one")), rtol=1e-4)


def test_ranks_draw_different_noise(two_ranks):
    _, ranks = two_ranks
    assert not torch.equal(ranks[0]["vae_dynamic"]["rng"], ranks[1]["vae_dynamic"]["rng"])


def test_full_batch_closed_form_player_equals_one_process(two_ranks, tmp_path):
    """EM runs on the whole set on every rank and keeps rank 0's result: exactly one process's run."""
    _, ranks = two_ranks
    _assert_equal(ranks[0]["em"]["params"], _train("em", tmp_path / "one")["params"])


def test_refusals_name_the_problem(two_ranks):
    _, ranks = two_ranks
    for errors in ranks:
        assert "batch_size=33 does not split over 2 processes; use a multiple of 2" in errors["errors"]["odd batch"]
        assert "closed form on minibatches" in errors["errors"]["minibatch closed form"]


def test_resumed_two_rank_run_is_bitwise_equal_and_only_rank0_writes(two_ranks):
    _, ranks = two_ranks
    for r in ranks:
        _assert_equal(r["resume"]["full"], r["resume"]["resumed"])
        assert not r["resume"]["rank1 wrote"]
    _assert_equal(ranks[0]["resume"]["resumed"], ranks[1]["resume"]["resumed"])


def test_cli_train_resume_and_refusal(two_ranks):
    """The CLI's path for several processes: rank 1 builds the run from rank 0's request (for --resume, from
    the run's config that rank 0 read) and writes nothing; a refused run ends both with one line, from rank 0."""
    tmp, ranks = two_ranks
    (c0, o0, e0), (c1, o1, e1) = ranks[0]["cli"][0], ranks[1]["cli"][0]
    assert (c0, c1) == (0, 0) and o0.count("trained vae") == 1 and not o1
    assert [c for c, _, _ in ranks[0]["cli"][1:2] + ranks[1]["cli"][1:2]] == [0, 0]
    out = tmp / "cli"
    assert sorted(c.name for c in (out / "checkpoints").iterdir()) == ["step-00000003", "step-00000004", "step-00000006"]
    assert [r.split(",")[0] for r in (out / "metrics.csv").read_text().splitlines()[1:]] == ["2", "4", "6"]
    (c0, _, e0), (c1, _, e1) = ranks[0]["cli"][2], ranks[1]["cli"][2]
    assert (c0, c1) == (2, 2) and not e1
    assert e0 == (f"jointkl: error: run directory {out} already exists; pass --force (force=True) to overwrite it, "
                  "--resume to continue it, or choose another --out\n")


def test_torchrun_launch(tmp_path):
    """`torchrun --standalone --nproc_per_node=2 -m jointkl train ...` with no code change: one run, rank 0's files."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}", "-m", "jointkl",
            "train", "gan", "--data", "grid25", "--steps", "4", "--out", str(tmp_path / "run"),
            *(f"{k}={v}" for k, v in {**TRAIN, **NET}.items() if k != "steps")]
    p = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("trained gan") == 1
    assert [r.split(",")[0] for r in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]] == ["2", "4"]


def test_python_api_under_torchrun_joins_the_launch(tmp_path):
    """`jk.train` called by every process of a launch trains data-parallel: one run directory, identical
    weights on both ranks."""
    script = tmp_path / "job.py"
    script.write_text("import sys, torch, jointkl as jk\n"
                      f"m = jk.train('gan', data='grid25', out=sys.argv[1], seed=0, **{ {**TRAIN, **NET}!r})\n"
                      "print('sum', float(sum(p.double().sum() for p in m.parameters())))\n")
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}", str(script),
            str(tmp_path / "run")]
    p = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert p.returncode == 0, p.stderr
    sums = [line for line in p.stdout.splitlines() if line.startswith("sum")]
    assert len(sums) == WORLD and len(set(sums)) == 1
    assert (tmp_path / "run" / "checkpoints").is_dir()
