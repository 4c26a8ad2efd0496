"""One trainer for every model: alternating per-player updates on in-memory data.

The trainer knows players, losses and parameters, never a model's name. Each outer step runs every
player in declaration order, `player.steps` times, each time on a fresh batch. Data lives on the device
as one tensor and is read by an epoch permutation from a seeded generator, so the whole run, resumed or
not, is a deterministic function of the seed on CPU.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from jointkl.data import Dataset, binarize_fixed
from jointkl.errors import JointKLError
from jointkl.objectives.base import Objective
from jointkl.plots import save_samples
from jointkl.training import checkpoint
from jointkl.training.config import TrainConfig


PROGRESS: bool | None = None   # None: a progress bar when stderr is a terminal; False: never


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise JointKLError(f"device {name!r} asked for but CUDA is not available; use device=cpu or device=auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise JointKLError(f"device {name!r} is not a device; use auto, cpu or cuda[:i]") from None


class EpochSampler:
    """Batches from a per-epoch random permutation (its state is part of the checkpoint)."""

    def __init__(self, n: int, seed: int):
        self.n, self.gen = n, torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(n, generator=self.gen), 0

    def next(self, b: int) -> torch.Tensor:
        if self.pos + b > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos: self.pos + b]
        self.pos += b
        return idx

    def state_dict(self):
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, s):
        self.gen.set_state(s["gen"])
        self.perm, self.pos = s["perm"], int(s["pos"])


class Trainer:
    def __init__(self, model: Objective, data: Dataset, cfg: TrainConfig, run_dir: Path):
        self.cfg, self.run_dir, self.data = cfg, Path(run_dir), data
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        x = data.train
        if cfg.binarize not in ("none", "fixed", "dynamic"):
            raise JointKLError(f"binarize={cfg.binarize!r} is not known; choose none, fixed or dynamic")
        if cfg.binarize == "fixed":
            x = binarize_fixed(x)
        n = max(1, round(cfg.train_fraction * x.shape[0]))           # the splits are already shuffled
        self.x = x[:n].to(self.device)                               # (N, *shape)
        self.y = None                                                # (N,) int64, -1 = unlabelled
        if model.labels:
            if data.train_labels is None:
                raise JointKLError(f"model {model.name} needs labelled data and {data.name} has no labels; "
                                   "use digits, mnist5k, grid25, mnist, svhn or cifar10")
            self.y = keep_labels(data.train_labels[:n], cfg.labelled, cfg.seed).to(self.device)
        self.players = model.players()
        self.opts = {p.name: torch.optim.Adam(p.params, lr=p.lr, betas=p.betas)
                     for p in self.players if not p.closed_form}
        self.batch = min(cfg.batch_size, self.x.shape[0])
        self.sampler = EpochSampler(self.x.shape[0], cfg.seed)
        self.step = 0

    # --- state -----------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"step": self.step, "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
                "sampler": self.sampler.state_dict(), "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def save(self) -> Path:
        return checkpoint.save(self.run_dir / "checkpoints", self.step, self.model.state_dict(),
                               self.state(), self.cfg.keep_ckpts)

    def restore(self) -> None:
        _, weights, s = checkpoint.load_latest(self.run_dir / "checkpoints")
        self.model.load_state_dict(weights)
        for k, o in self.opts.items():
            o.load_state_dict(s["optimizers"][k])
        self.sampler.load_state_dict(s["sampler"])
        torch.set_rng_state(s["rng_cpu"])
        if s["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["rng_cuda"])
        self.step = int(s["step"])

    # --- one update --------------------------------------------------------------------------------
    def next_batch(self, full: bool) -> tuple[torch.Tensor, ...]:
        """(x,) or, for a labelled model, (x, y)."""
        idx = None if full else self.sampler.next(self.batch).to(self.device)
        x = self.x if idx is None else self.x[idx]
        x = torch.bernoulli(x) if self.cfg.binarize == "dynamic" else x
        return (x,) if self.y is None else (x, self.y if idx is None else self.y[idx])

    def _loss(self, player: str, batch: tuple[torch.Tensor, ...]):
        """model.loss; a distribution rejecting NaN/Inf parameters (diverged weights) counts as a non-finite loss."""
        try:
            return self.model.loss(player, *batch)
        except ValueError:
            validate = torch.distributions.Distribution._validate_args
            torch.distributions.Distribution.set_default_validate_args(False)
            try:
                loss, _ = self.model.loss(player, *batch)
            except Exception:
                loss = None
            finally:
                torch.distributions.Distribution.set_default_validate_args(validate)
            if loss is not None and not torch.isfinite(loss):
                raise NonFinite(player, self.step + 1, float(loss.detach())) from None
            raise

    def train_step(self) -> dict[str, torch.Tensor]:
        logs = {}
        for p in self.players:
            self.model.begin(p.name)
            for _ in range(p.steps):
                batch = self.next_batch(p.full_batch)
                if p.closed_form:
                    out = self.model.update(p.name, batch[0])
                else:
                    loss, out = self._loss(p.name, batch)
                    if not torch.isfinite(loss):
                        raise NonFinite(p.name, self.step + 1, float(loss.detach()))
                    opt = self.opts[p.name]
                    opt.zero_grad(set_to_none=True)
                    loss.backward(inputs=p.params)   # only this player's parameters get gradients
                    opt.step()
                    out = {"loss": loss, **out}
                logs.update({f"{p.name}/{k}": v.detach() for k, v in out.items()})
        self.step += 1
        return logs

    # --- the loop ----------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> Objective:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        if resume:
            self.restore()
        log = MetricsLog(self.run_dir, self.step)
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.model.name, dynamic_ncols=True,
                   disable=None if PROGRESS is None else not PROGRESS)
        try:
            while self.step < cfg.steps:
                with torch.enable_grad():     # also when called under no_grad
                    logs = self.train_step()
                bar.update(1)
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    values = {k: float(v) for k, v in logs.items()}
                    log.write(self.step, values)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(values.items())[:4]}, refresh=False)
                if (cfg.sample_every and self.step % cfg.sample_every == 0) or last:
                    self.sample_grid()
                if self.step % cfg.ckpt_every == 0 or last:
                    self.save()
        except NonFinite as e:
            good = checkpoint.list_checkpoints(self.run_dir / "checkpoints")
            where = f"the last good checkpoint is {good[0]}" if good else "no checkpoint was written yet"
            raise JointKLError(f"non-finite loss ({e.value}) for player '{e.player}' at step {e.step}; {where}. "
                               "lower the learning rate and retrain with --force") from None
        finally:
            bar.close()
            log.close()
        self.model.eval()
        return self.model

    def sample_grid(self) -> None:
        """A PNG of samples; a forked RNG with a fixed seed keeps training's random stream untouched."""
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.cfg.seed + 12345)
                self.model.eval()
                x = self.model.sample(64 if self.x.dim() > 2 else 1000)
                self.model.train()
        except JointKLError:      # the model has no sampler
            return
        save_samples(x, self.run_dir / "samples" / f"step-{self.step:08d}.png",
                     self.data.meta.get("means"), f"{self.model.name} step {self.step}")


def keep_labels(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Labels with all but a class-balanced `fraction` per class set to -1 (which rows: fixed by `seed`)."""
    if fraction >= 1.0:
        return y.clone()
    g, out = torch.Generator().manual_seed(seed), torch.full_like(y, -1)
    for c in y[y >= 0].unique():
        rows = (y == c).nonzero().squeeze(1)
        keep = rows[torch.randperm(len(rows), generator=g)[:max(1, round(fraction * len(rows)))]]
        out[keep] = c
    return out


class NonFinite(Exception):
    def __init__(self, player: str, step: int, value: float):
        self.player, self.step, self.value = player, step, value


class MetricsLog:
    """metrics.csv plus TensorBoard; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, run_dir: Path, start: int):
        self.path = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        if start > 0 and self.path.exists():
            with open(self.path) as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        self.fields = list(self.rows[0]) if self.rows else None
        self._rewrite()
        from torch.utils.tensorboard import SummaryWriter
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)

    def _rewrite(self):
        with open(self.path, "w", newline="") as f:
            if self.fields:
                w = csv.DictWriter(f, self.fields)
                w.writeheader()
                w.writerows(self.rows)

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **values}
        if self.fields is None:
            self.fields = list(row)
            self._rewrite()
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)
        for k, v in values.items():
            if math.isfinite(v):
                self.tb.add_scalar(k, v, step)

    def close(self):
        self.tb.close()
