"""One trainer for every model: alternating per-player updates on in-memory data.

The trainer knows players, losses and parameters, never a model's name. Each outer step runs every
player in declaration order, `player.steps` times, each time on a fresh batch. Data lives on the device
as one tensor and is read by an epoch permutation from a seeded generator, so the whole run, resumed or
not, is a deterministic function of the seed on CPU. A set too large for memory (`jointkl.data.stream`) stays
on the host and each batch's rows, drawn by the same permutation, are read from its source and copied to the
device: the same batches, bitwise. `deterministic=true` asks torch for deterministic kernels on the GPU too.

Callbacks (`Callback`: fit start, step start and end, log, checkpoint, fit end) are how anything outside
the trainer watches or steers a run: the run folder's writers (metrics.csv + TensorBoard, sample grids) are
callbacks, and so are AVB's variational-Bayes fit, the Eight Schools curves, the time estimate of
`reproduce` and the benchmarks' clocks; a callback stops a run by setting `trainer.should_stop`, and so do
SIGINT and SIGTERM (`StopOnSignal`: the step finishes, a checkpoint is written, `Interrupted` says how to
resume). Without a run folder (`run_dir=None`) the trainer writes nothing.

Divergence: a loss that is not finite or beyond LOSS_LIMIT stops the run before its update is applied; at log
steps and before every checkpoint the parameters must be finite and below WEIGHT_LIMIT, and before every
checkpoint a few samples must be finite, so that every checkpoint on disk is a good one (`Trainer.check`).

Under torchrun the same loop runs data-parallel (jointkl.training.distributed): each rank takes its slice
of every global batch and a player's gradients are averaged over the ranks before its optimizer steps.

Speed, from profiles (benchmarks/README.md): Adam is fused into one kernel where torch has it (torch's
per-tensor Adam was a quarter of the mnist5k VAE's step on CPU; fused, under a tenth); a batch is one
`index_select` from the device tensor (5x faster than `x[idx]`); gradients are set to None, not zeroed;
logged values become Python floats only at log steps. The one host read per update is the loss check
(finite, |loss| <= LOSS_LIMIT) that stops a diverged run before its bad update is applied: 5 us, 0.2 % of the
GAN benchmark's step.
torch.compile of the networks made the GAN benchmark 2x slower after a 55 s compile, so it is not used.

Precision (`precision=`, docs/precision.md): fp32 (the default) runs as written. bf16 and fp16 run every
gradient-trained player's forward pass and loss under `torch.autocast` (matrix products in 16 bits, reductions
and losses in float32 as autocast decides), the backward pass and the optimizer outside it; parameters, gradients
and Adam's state stay float32, and closed-form updates, sampling and the divergence checks are never autocast.
fp16 scales each player's loss by its own `torch.amp.GradScaler` (its state is in the checkpoint, so a resumed run
is bitwise the uninterrupted one in every precision) and needs CUDA: on the CPU, torch's fp16 autocast has no
fast kernels on most CPUs and fp16's narrow range needs the scaler that bf16 (float32's range) does not, so
fp16 off CUDA is one line suggesting bf16. bf16 runs on CPU (fast where the CPU has avx512_bf16 or AMX) and on
CUDA devices that support it.
"""
from __future__ import annotations

import contextlib
import csv
import math
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

import torch
from tqdm.auto import tqdm

from jointkl.data import Dataset
from jointkl.data.base import UNPREPARED, prepared_key
from jointkl.data.stream import Streamed
from jointkl.errors import Diverged, JointKLError, one_line
from jointkl.plots import save_samples
from jointkl.training import checkpoint, distributed
from jointkl.training.config import TrainConfig
from jointkl.training.player import Player


class Callback:
    """Hooks into `Trainer.fit`, in the spirit of minGPT's callbacks and Lightning's hooks; override any.
    `on_step_start`/`on_step_end` run on every process, the others (and the run folder's writers) on rank 0
    alone. `logs` holds the step's detached loss tensors; `values` the logged floats (averaged over ranks).
    A Weights & Biases or MLflow logger is an `on_log` of one line (docs/callbacks.md)."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_step_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, logs: dict[str, torch.Tensor]) -> None: ...
    def on_log(self, trainer: Trainer, values: dict[str, float]) -> None: ...
    def on_checkpoint(self, trainer: Trainer, path: Path) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


def resolve_device(name: str) -> torch.device:
    """The device a run trains on; one that this machine does not have is one `JointKLError` line."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise JointKLError(f"device={name!r} is not a device; use auto, cpu, cuda[:i] or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise JointKLError(f"device={name!r} asked for but CUDA is not available; use device=cpu or device=auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise JointKLError(f"device={name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                               "device(s), cuda:0 and up; use device=cuda or device=auto")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise JointKLError(f"device={name!r} asked for but MPS is not available; use device=cpu or device=auto")
    elif device.type != "cpu":
        raise JointKLError(f"device={name!r} cannot train a model; use auto, cpu, cuda[:i] or mps")
    return device


class EpochSampler:
    """Batches from a per-epoch random permutation (its state is part of the checkpoint). The permutation is
    drawn on the CPU from the sampler's own generator and copied to the device once per epoch, so batches
    cost no host-to-device copy; every rank draws the same one (the generator is seeded by the run's seed)."""

    def __init__(self, n: int, seed: int, device: torch.device | str = "cpu"):
        self.n, self.device, self.gen = n, torch.device(device), torch.Generator().manual_seed(seed)
        self.perm, self.pos = self._draw(), 0

    def _draw(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.gen).to(self.device)

    def next(self, b: int) -> torch.Tensor:
        if self.pos + b > self.n:
            self.perm, self.pos = self._draw(), 0
        idx = self.perm[self.pos: self.pos + b]
        self.pos += b
        return idx

    def state_dict(self):
        return {"gen": self.gen.get_state(), "perm": self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, s):
        self.gen.set_state(s["gen"])
        self.perm, self.pos = s["perm"].to(self.device), int(s["pos"])


AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}      # precision -> autocast dtype; fp32: none


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the players' losses are autocast to on `device` (None for fp32); a precision this device cannot
    train in is one `JointKLError` line naming one it can."""
    if precision not in AUTOCAST:
        if precision != "fp32":
            raise JointKLError(f"precision={precision!r} is not known; choose fp32, bf16 or fp16")
        return None
    if precision == "fp16" and device.type != "cuda":
        raise JointKLError(f"precision=fp16 needs CUDA (its gradient scaler and fast fp16 kernels) and this run trains "
                           f"on {device.type}; use precision=bf16 (float32's range, no scaler) or precision=fp32")
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise JointKLError(f"precision=bf16 is not supported by {torch.cuda.get_device_name(device)}; "
                           "use precision=fp16 or precision=fp32")
    if not torch.amp.is_autocast_available(device.type):
        raise JointKLError(f"precision={precision} needs autocast, which torch {torch.__version__} does not have on "
                           f"{device.type}; use precision=fp32")
    return AUTOCAST[precision]


@contextlib.contextmanager
def deterministic_kernels(on: bool, device: torch.device):
    """`deterministic=true`: for the length of a run, torch's deterministic algorithms, cuDNN's deterministic
    convolutions and no cuDNN autotuning (which picks kernels by timing them), and on CUDA the cuBLAS workspace
    setting torch requires for deterministic matrix products; as they were after. An op without a deterministic
    kernel warns (warn_only) rather than stops a long run. Off: torch's settings are left alone. On the CPU every
    kernel the trainer uses is deterministic either way (tests/training/test_trainer.py)."""
    if not on:
        yield
        return
    cudnn = torch.backends.cudnn
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             cudnn.deterministic, cudnn.benchmark)
    # read by cuBLAS when it starts in this process: a process that used CUDA before the run keeps its setting
    workspace = device.type == "cuda" and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    if workspace:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.use_deterministic_algorithms(True, warn_only=True)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        cudnn.deterministic, cudnn.benchmark = saved[2], saved[3]
        if workspace:
            del os.environ["CUBLAS_WORKSPACE_CONFIG"]


def make_optimizer(p: Player) -> torch.optim.Adam:
    """Adam for one player: fused into one kernel for float tensors on CPU or CUDA (the same update as the
    per-tensor loop up to rounding, at a fraction of its memory passes), torch's default elsewhere."""
    fused = bool(p.params) and all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in p.params)
    return torch.optim.Adam(p.params, lr=p.lr, betas=p.betas, fused=fused or None)


class Trainer:
    """Trains `model` on a prepared `data` set (`jointkl.data.prepare`) with the options of `cfg`.

    run_dir    the run folder (checkpoints, metrics.csv, TensorBoard, sample grids), or None to write nothing
    callbacks  `Callback`s, called in order after the run folder's own writers
    progress   a tqdm bar: None when stderr is a terminal, True always, False never
    reseed     seed the noise stream from `cfg.seed` at the start of `fit` (False: go on with the caller's)
    """

    def __init__(self, model, data: Dataset, cfg: TrainConfig, run_dir: str | Path | None = None,
                 callbacks: tuple[Callback, ...] | list[Callback] = (), progress: bool | None = None,
                 reseed: bool = True):
        self.cfg, self.data = cfg, data
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.progress, self.reseed, self.should_stop = progress, reseed, False
        self.dist = distributed.context()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not self.dist.active:
            raise JointKLError("launched as one of several processes (WORLD_SIZE is set) but not joined to them: "
                               "use `torchrun ... -m jointkl train ...`, or call "
                               "jointkl.training.distributed.setup() before building the trainer")
        threads = cfg.threads or distributed.default_threads(self.dist)
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(cfg.device)
        if self.dist.active and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", self.dist.local_rank)      # one GPU per process on a node
        self.model = model.to(self.device)
        want = prepared_key(cfg.binarize, cfg.train_fraction, cfg.labelled, cfg.seed, model.labels)
        if data.meta.get("prepared", UNPREPARED) != want:
            raise JointKLError(f"the data were not prepared for binarize={cfg.binarize}, train_fraction="
                               f"{cfg.train_fraction}, labelled={cfg.labelled}; pass jointkl.data.prepare(data, ...) "
                               "or train through jointkl.train")
        if model.labels and data.train_labels is None:
            raise JointKLError(f"model {model.name} needs labelled data and {data.name} has no labels; "
                               "use digits, mnist5k, grid25, mnist, svhn or cifar10")
        # a streamed set stays on the host, and so do its labels and the sampler: batches are read there
        self.streamed = isinstance(data.train, Streamed)
        home = torch.device("cpu") if self.streamed else self.device
        self.x = data.train if self.streamed else data.train.to(self.device)     # (N, *shape)
        if self.streamed:                                                # found by the scan at loading
            lo, hi = data.train.lo, data.train.hi
        else:                                                            # once, at build
            lo, hi = (float(v) for v in torch.aminmax(self.x)) if self.x.numel() else (0.0, 0.0)
        self.data_scale = max(abs(lo), abs(hi))                          # names the likely cause of a divergence
        if cfg.binarize == "dynamic" and not 0.0 <= lo <= hi <= 1.0:
            raise JointKLError(f"binarize=dynamic draws every value as a probability, but {data.name} holds values in "
                               f"[{lo:.3g}, {hi:.3g}]; use binarize=none, or scale the data to [0, 1]")
        self.y = data.train_labels.to(home) if model.labels else None   # (N,) int64, -1 = unlabelled
        self.players: list[Player] = model.players()
        self.opts = {p.name: make_optimizer(p) for p in self.players if not p.closed_form}
        self.amp_dtype = autocast_dtype(cfg.precision, self.device)
        self.scalers = ({k: torch.amp.GradScaler(self.device.type) for k in self.opts}   # one per player (fp16)
                        if cfg.precision == "fp16" else {})
        self.batch = min(cfg.batch_size, self.x.shape[0])                # the global batch
        world = self.dist.world
        if self.batch % world:
            raise JointKLError(f"batch_size={self.batch} does not split over {world} processes; use a multiple of "
                               f"{world} (it is the global batch: each process takes batch_size/{world} rows)")
        rows = self.batch // world
        if rows < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            why = (f"{data.name} has {self.x.shape[0]} training row(s)" if self.x.shape[0] < cfg.batch_size
                   else f"batch_size={cfg.batch_size}" + (f" over {world} processes" if world > 1 else ""))
            raise JointKLError(f"model {model.name} has batch norm (g_batchnorm=true, or a dcgan network), which needs "
                               f"at least 2 rows per batch, and {why} gives {rows}; use batch_size=2 or more")
        for p in self.players:
            if self.streamed and p.full_batch:
                raise JointKLError(f"player '{p.name}' of {model.name} sees the whole training set at every update, "
                                   f"and {data.name} is streamed ({self.x.shape[0]} rows, not held in memory); "
                                   "raise JOINTKL_IN_MEMORY_GB so that it is read into memory, or train on fewer rows")
            if self.dist.active and p.closed_form and not p.full_batch:
                raise JointKLError(f"player '{p.name}' of {model.name} updates in closed form on minibatches, which "
                                   "cannot be averaged over processes; train it in one process")
        self.rows = slice(self.dist.rank * self.batch // world, (self.dist.rank + 1) * self.batch // world)
        self.sampler = EpochSampler(self.x.shape[0], cfg.seed, home)
        self.step = 0
        own = [MetricsFiles(self.run_dir), SampleGrids(self.run_dir)] if self.run_dir and self.dist.main else []
        self.callbacks: list[Callback] = [*own, *callbacks]

    # --- state -----------------------------------------------------------------------------------
    def state(self) -> dict:
        state = {"step": self.step, "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
                 "sampler": self.sampler.state_dict(), "rng_cpu": torch.get_rng_state(),
                 "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        if self.scalers:                  # fp16: each player's loss scale and its growth counter
            state["scalers"] = {k: sc.state_dict() for k, sc in self.scalers.items()}
        return state

    def save(self) -> Path | None:
        """A checkpoint, written by rank 0 alone; under several processes it also keeps every rank's noise stream.
        Nothing without a run folder."""
        if self.run_dir is None:
            return None
        state = self.state()
        if self.dist.active:
            ranks = distributed.gather_objects((state["rng_cpu"], state["rng_cuda"]))
            if not self.dist.main:
                return None
            state["rng_ranks"] = ranks
        return checkpoint.save(self.run_dir / "checkpoints", self.step, self.model.state_dict(),
                               state, self.cfg.keep_ckpts)

    def restore(self, loaded: tuple[dict, dict] | None = None) -> None:
        """Continue from `loaded` = (weights, state), by default the newest good checkpoint on disk. A checkpoint
        that does not fit this model and its options (an edited config.yaml) is one `JointKLError` line."""
        path = None
        if loaded is None:
            if self.run_dir is None:
                raise JointKLError("nothing to resume from: this trainer has no run folder (run_dir=None)")
            path, weights, s = self._read_latest()
        else:
            weights, s = loaded
        try:
            self.model.load_state_dict(weights)
            for k, o in self.opts.items():
                o.load_state_dict(s["optimizers"][k])
            for k, sc in self.scalers.items():
                sc.load_state_dict(s["scalers"][k])
            self.sampler.load_state_dict(s["sampler"])
            self.step = int(s["step"])
            rank, ranks = self.dist.rank, s.get("rng_ranks")
            if ranks is not None and len(ranks) == self.dist.world:
                rng_cpu, rng_cuda = ranks[rank]
            elif rank == 0:
                rng_cpu, rng_cuda = s["rng_cpu"], s["rng_cuda"]
            else:   # resumed with another number of processes: a fresh stream, still a function of the run
                torch.manual_seed(hash((self.cfg.seed, rank, self.step)) % 2**63)
                return
            torch.set_rng_state(rng_cpu)
            if rng_cuda and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng_cuda)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            which = f"checkpoint {path}" if path else "the checkpoint"
            raise JointKLError(f"{which} does not fit the model and options of config.yaml ({_brief(e)}); "
                               "was the config edited? retrain the run with --force") from None

    def _read_latest(self) -> tuple[Path, dict, dict]:
        """`checkpoint.load_latest`, where a file that passes its checksums but cannot be read (a state.pt torch
        refuses to unpickle: written by another torch, or rewritten along with its manifest) is one line."""
        ckpts = self.run_dir / "checkpoints"
        try:
            return checkpoint.load_latest(ckpts)
        except JointKLError:
            raise
        except Exception as e:   # noqa: BLE001  (unpickling raises what the pickled bytes make it raise)
            newest = next((p for p in checkpoint.list_checkpoints(ckpts) if checkpoint.verify(p) is None), ckpts)
            raise JointKLError(f"checkpoint {newest} cannot be read ({_brief(e)}); delete that folder to resume "
                               "from the one before it, or retrain the run with --force") from None

    def _start(self, resume: bool) -> None:
        """Every rank starts from rank 0's state: its fresh weights, or the checkpoint it restored."""
        if not self.dist.active:
            if resume:
                self.restore()
            return
        configs = (self.model.name, self.model.cfg, self.cfg)
        if self.dist.main:
            try:
                loaded = self._read_latest()[1:] if resume else None
            except JointKLError as e:
                distributed.start_message({"abort": str(e)})
                raise
            distributed.start_message({"configs": configs, "loaded": loaded})
        else:
            msg = distributed.start_message()
            if "abort" in msg:
                raise JointKLError(msg["abort"])
            if msg["configs"] != configs:
                raise JointKLError(f"process {self.dist.rank} was given another model or options than process 0; "
                                   "launch every process with the same command")
            loaded = msg["loaded"]
        if loaded is not None:
            self.restore(loaded)
        distributed.broadcast_tensors(list(self.model.state_dict().values()))

    # --- one update --------------------------------------------------------------------------------
    def next_batch(self, full: bool) -> tuple[torch.Tensor, ...]:
        """(x,) or, for a labelled model, (x, y)."""
        idx = None if full else self.sampler.next(self.batch)[self.rows]     # this rank's slice of the global batch
        x = self.x if idx is None else self.x.index_select(0, idx)          # 5x faster than self.x[idx] on CPU
        y = None if self.y is None else self.y if idx is None else self.y.index_select(0, idx)
        if self.streamed:                                # read from the source on the host just now
            x, y = x.to(self.device), (None if y is None else y.to(self.device))
        x = torch.bernoulli(x) if self.cfg.binarize == "dynamic" else x
        return (x,) if y is None else (x, y)

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
                raise Diverging("loss", player, self.step + 1, float(loss.detach())) from None
            raise

    def train_step(self) -> dict[str, torch.Tensor]:
        logs = {}
        # linear decay to lr_decay x at the last step, a function of the step alone (resume stays bitwise)
        scale = 1.0 - (1.0 - self.cfg.lr_decay) * self.step / max(1, self.cfg.steps - 1)
        for p in self.players:
            self.model.begin(p.name)
            if not p.closed_form and self.cfg.lr_decay != 1.0:
                for group in self.opts[p.name].param_groups:
                    group["lr"] = p.lr * scale
            for _ in range(p.steps):
                batch = self.next_batch(p.full_batch)
                if p.closed_form:
                    out = self.model.update(p.name, batch[0])
                    if self.dist.active:          # every rank computed it on the full set; rank 0's is kept
                        distributed.broadcast_tensors(list(self.model.state_dict().values()))
                else:
                    with self.autocast():
                        loss, out = self._loss(p.name, batch)
                    opt, scaler = self.opts[p.name], self.scalers.get(p.name)
                    opt.zero_grad(set_to_none=True)
                    # only this player's parameters get gradients (fp16: of the scaled loss)
                    (loss if scaler is None else scaler.scale(loss)).backward(inputs=p.params)
                    if self.dist.active:             # the global batch's mean gradient and loss, on every rank
                        loss = distributed.average_gradients(p.params, loss)
                    if not bool(loss.detach().abs() <= LOSS_LIMIT):   # NaN, inf or exploded: before the update
                        raise Diverging("loss", p.name, self.step + 1, float(loss.detach()))
                    if scaler is None:
                        opt.step()
                    else:                            # unscales; skips the step if a gradient overflowed
                        scaler.step(opt)
                        scaler.update()
                    out = {"loss": loss, **out}
                if self.amp_dtype is None:
                    logs.update({f"{p.name}/{k}": v.detach() for k, v in out.items()})
                else:                                # a value autocast left in 16 bits is logged as float32
                    logs.update({f"{p.name}/{k}": v.detach().float() for k, v in out.items()})
        self.step += 1
        return logs

    def autocast(self):
        """The context the players' forward passes and losses run in: autocast to bf16/fp16, or nothing (fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # --- the loop ----------------------------------------------------------------------------------
    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, resume: bool = False):
        """Train to `cfg.steps` (from the newest checkpoint if `resume`) and return the model in eval mode.

        SIGINT (Ctrl-C) or SIGTERM (SLURM, Kubernetes, `timeout`) while it trains in the main thread: the current
        step finishes, a checkpoint is written at it (with a run folder), then `Interrupted` is raised, its message
        the command that resumes the run; a second signal stops at once. The previous handlers are back after.
        A diverged run (`check`) raises `Diverged`, naming the player, the step, the last good checkpoint and
        the likely cause."""
        cfg, main = self.cfg, self.dist.main
        if self.reseed:
            torch.manual_seed(distributed.noise_seed(cfg.seed, self.dist.rank))   # noise differs per rank
        self._start(resume)
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.model.name, dynamic_ncols=True,
                   disable=(None if self.progress is None else not self.progress) if main else True)
        self.should_stop = False
        started = False
        signals = StopOnSignal(self)
        with signals, deterministic_kernels(cfg.deterministic, self.device):
            try:
                if main:
                    self._call("on_fit_start")
                    started = True
                while self.step < cfg.steps and not self.should_stop:
                    self._call("on_step_start")
                    with torch.enable_grad():     # also when called under no_grad
                        logs = self.train_step()
                    bar.update(1)
                    last = self.step == cfg.steps
                    logged = self.step % cfg.log_every == 0 or last
                    if logged:                    # the only host reads of logged values
                        if self.dist.active:
                            logs = distributed.mean_over_ranks(logs)
                        if main:
                            values = {k: float(v) for k, v in logs.items()}
                            self._call("on_log", values)
                            bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(values.items())[:4]},
                                            refresh=False)
                    self._call("on_step_end", logs)
                    if self.dist.active:
                        signals.agree()           # every rank stops after the same step
                    if self.step % cfg.ckpt_every == 0 or last or self.should_stop:
                        self.check(samples=True)  # only a good model is saved
                        path = self.save()
                        if path is not None:
                            self._call("on_checkpoint", path)
                    elif logged:
                        self.check(samples=False)
            except Diverging as e:
                raise Diverged(self._diverged(e)) from None
            finally:
                bar.close()
                if started:
                    self._call("on_fit_end")
        if signals.signum is not None:
            raise signals.interrupted(at_once=False)
        self.model.eval()
        return self.model

    # --- divergence ----------------------------------------------------------------------------------
    def check(self, samples: bool = False) -> None:
        """Raise `Diverging` if a player's parameters are not finite or, for a gradient-trained player, beyond
        WEIGHT_LIMIT in magnitude (a closed-form player's are statistics of the data, at the data's scale), or,
        with `samples`, if a few of the model's samples (drawn on a forked RNG, so training's random stream is
        untouched) are not finite. One host read for the parameters and one for the samples; `fit` calls it at
        log steps and before every checkpoint (the per-update loss check is in `train_step`)."""
        players = [p for p in self.players if any(t.numel() for t in p.params)]
        if players:
            peaks = torch.stack([torch.stack([torch.linalg.vector_norm(t.detach().float(), math.inf)
                                              for t in p.params if t.numel()]).max() for p in players])
            for p, peak in zip(players, peaks.tolist()):
                if not math.isfinite(peak) or (not p.closed_form and peak > WEIGHT_LIMIT):
                    raise Diverging("parameters", p.name, self.step, peak)
        if samples:
            x = self.probe_samples()
            if x is not None and not bool(torch.isfinite(x).all()):
                raise Diverging("samples", None, self.step, float("nan"))

    def probe_samples(self, n: int = 16) -> torch.Tensor | None:
        """n samples in eval mode from a fixed seed on a forked RNG, or None if the model has no sampler; every
        module's train/eval mode is put back as it was."""
        device, modes = self.device, [(m, m.training) for m in self.model.modules()]
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
                torch.manual_seed(self.cfg.seed + 54321)
                self.model.eval()
                return self.model.sample(n)
        except JointKLError:          # the model has no sampler
            return None
        except ValueError:            # a distribution refusing non-finite parameters (e.g. a buffer gone NaN)
            return torch.tensor([math.nan], device=device)
        finally:
            for m, training in modes:
                m.training = training

    def _diverged(self, e: Diverging) -> str:
        good = checkpoint.list_checkpoints(self.run_dir / "checkpoints") if self.dist.main and self.run_dir else []
        where = f"the last good checkpoint is {good[0]}" if good else "no checkpoint was written yet"
        if e.what == "samples":
            what = f"the model's samples are not finite at step {e.step}, so that checkpoint was not written"
        elif not math.isfinite(e.value):
            what = f"non-finite {e.what} ({e.value}) for player '{e.player}' at step {e.step}"
        else:
            limit = LOSS_LIMIT if e.what == "loss" else WEIGHT_LIMIT
            verb = "exploded to" if e.what == "loss" else "reached"
            what = f"{e.what} of player '{e.player}' {verb} {e.value:.3g} at step {e.step} (beyond {limit:g})"
        if self.data_scale > DATA_LIMIT:
            fix = (f"the training data reach |x| = {self.data_scale:.3g}: rescale them (e.g. to zero mean and unit "
                   "variance) and retrain with --force")
        else:
            lrs = [f"'{p.name}' lr={p.lr:g}" for p in self.players
                   if not p.closed_form and (e.player is None or p.name == e.player)]
            fix = f"lower the learning rate ({', '.join(lrs)}) and retrain with --force" if lrs else \
                "lower the learning rate and retrain with --force"
        return f"{what}; {where}. {fix}"


def train_without_data(model, steps: int, batch: int, device: str, callbacks=(), seed: int = 0):
    """Train a model whose loss needs no data (variational Bayes for a fixed log-density): each step gets a
    batch of `batch` empty rows, which only sets how many draws the loss takes."""
    empty = torch.zeros(batch, 0)                                          # (batch, 0): batch rows, no x
    cfg = TrainConfig(steps=steps, batch_size=batch, device=device, seed=seed, log_every=steps)
    Trainer(model, Dataset("vi", empty, empty, "continuous"), cfg, callbacks=callbacks, progress=False,
            reseed=False).fit()
    return model


LOSS_LIMIT = 1e12     # |loss| beyond this is divergence (healthy losses are nats per example: < 1e5 here)
WEIGHT_LIMIT = 1e12   # |parameter| beyond this: Adam moves a weight by about lr per update, so a healthy run
                      # (lr <= 1e-2, <= 1e6 steps) stays below 1e4
DATA_LIMIT = 1e6      # training data beyond this in magnitude: a divergence is blamed on the data's scale


class Diverging(Exception):
    """Raised inside the loop (`what`: loss, parameters or samples); `fit` turns it into `Diverged`."""

    def __init__(self, what: str, player: str | None, step: int, value: float):
        self.what, self.player, self.step, self.value = what, player, step, value


def _brief(e: BaseException, limit: int = 160) -> str:
    line = one_line(e)
    return line if len(line) <= limit else line[:limit] + "..."


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM. The message says where and how to resume; `exit_code` is what a
    shell reports for the signal (130 for SIGINT, 143 for SIGTERM), which the `jointkl` command exits with."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum, self.exit_code = signum, 128 + signum


class StopOnSignal:
    """SIGINT and SIGTERM handlers for the length of `fit`, installed only in the main thread (where Python runs
    signal handlers) and replaced by the previous ones after. The first signal sets `trainer.should_stop` (the
    step finishes, `fit` writes its checkpoint and raises `interrupted()`); a second raises at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Trainer):
        self.trainer, self.signum, self.previous = trainer, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self.previous = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            self.signum = signum
            raise self.interrupted(at_once=True)
        self.signum, self.trainer.should_stop = signum, True
        if self.trainer.dist.main:
            name = signal.Signals(signum).name
            print(f"\njointkl: {name}: stopping after this step, with a checkpoint ({name} again stops at once)",
                  file=sys.stderr, flush=True)

    def agree(self) -> None:
        """Under torchrun: any rank's signal stops every rank after this step (one small all-reduce per step)."""
        flag = torch.tensor([self.signum or 0])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if int(flag) and self.signum is None:
            self.signum, self.trainer.should_stop = int(flag), True

    def interrupted(self, at_once: bool) -> Interrupted:
        t, name = self.trainer, signal.Signals(self.signum).name
        how = f"stopped at once by a second {name} during step {t.step + 1}" if at_once else \
            f"stopped by {name} at step {t.step} of {t.cfg.steps}"
        if t.run_dir is None:
            return Interrupted(f"{how} (no run folder: nothing was saved)", self.signum)
        good = checkpoint.list_checkpoints(t.run_dir / "checkpoints")
        cmd = f"jointkl train {t.model.name} --out {shlex.quote(str(t.run_dir))} --resume"
        if not good:   # --resume of a run without a checkpoint trains it from step 0
            return Interrupted(f"{how}, before any checkpoint was written; start it again with: {cmd}", self.signum)
        saved = f"checkpoint {good[0]}" if at_once else f"checkpoint written: {good[0]}"
        return Interrupted(f"{how}; {saved}; resume with: {cmd}", self.signum)


class MetricsFiles(Callback):
    """metrics.csv plus TensorBoard in the run folder; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path, self.tb = run_dir, run_dir / "metrics.csv", None

    def on_fit_start(self, trainer):
        start = trainer.step
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self.fields = None
        if start > 0 and self.path.exists():
            self._read(start)
        self._rewrite()
        from torch.utils.tensorboard import SummaryWriter
        self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start + 1 if start else None)

    def _read(self, start: int) -> None:
        """The rows up to `start`; a file that is not the CSV this writes (bytes that are not UTF-8, a missing
        step column, a step that is no number) is moved aside to metrics.csv.corrupt with one line, not fatal."""
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = [r for r in reader if int(r["step"]) <= start]
                fields = list(reader.fieldnames or [])
            self.rows = [{k: r.get(k) or "" for k in fields} for r in rows]
            self.fields = fields if self.rows else None
        except (ValueError, KeyError, TypeError, csv.Error) as e:   # UnicodeDecodeError is a ValueError
            aside = self.path.with_name(self.path.name + ".corrupt")
            os.replace(self.path, aside)
            print(f"jointkl: {self.path} is unreadable ({_brief(e, 80)}); moved it to {aside.name}, new rows start "
                  f"after step {start}", file=sys.stderr)
            self.rows, self.fields = [], None

    def _rewrite(self):
        with open(self.path, "w", newline="") as f:
            if self.fields:
                w = csv.DictWriter(f, self.fields)
                w.writeheader()
                w.writerows(self.rows)

    def on_log(self, trainer, values):
        row = {"step": trainer.step, **values}
        if self.fields is None:
            self.fields = list(row)
            self._rewrite()
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)
        for k, v in values.items():
            if math.isfinite(v):
                self.tb.add_scalar(k, v, trainer.step)

    def on_fit_end(self, trainer):
        if self.tb is not None:
            self.tb.close()


class SampleGrids(Callback):
    """A PNG of samples every `sample_every` steps and at the last; a forked RNG with a fixed seed keeps
    training's random stream untouched."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_step_end(self, trainer, logs):
        every, step = trainer.cfg.sample_every, trainer.step
        if not ((every and step % every == 0) or step == trainer.cfg.steps):
            return
        model, device = trainer.model, trainer.device
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(trainer.cfg.seed + 12345)
                model.eval()
                x = model.sample(64 if trainer.x.dim() > 2 else 1000)
                model.train()
        except JointKLError:      # the model has no sampler
            return
        save_samples(x, self.run_dir / "samples" / f"step-{step:08d}.png",
                     trainer.data.meta.get("means"), f"{model.name} step {step}")
