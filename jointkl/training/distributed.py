"""Data-parallel training with torch.distributed, launched by torchrun with no code change.

    torchrun --standalone --nproc_per_node=2 -m jointkl train vae --data mnist5k batch_size=100
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
             -m jointkl train gan --data grid25           # the same on every node, node_rank 0, 1, ...

This module holds the collectives; `jointkl.run.launch` builds a run on every process of a launch (from
Python, every process calls `jointkl.train(...)`, which joins the group when torchrun started it).

Every rank holds the whole model. Each update of a player runs on every rank, on its own slice of the
global batch (`batch_size / world` rows of one epoch permutation shared by all ranks), and that player's
gradients are then averaged over the ranks in one all-reduce of a flat buffer; every rank applies the same
Adam step, so the parameters stay identical without ever being sent again. This is what
DistributedDataParallel does for one module and one optimizer. It is written out here because a model has
several players, each with its own optimizer, updated in turn inside one outer step, and a player's loss
runs other players' networks (a GAN's generator loss runs D) whose gradients must not be averaged or
applied: DDP all-reduces every parameter of the module it wraps after every backward. Unlike DDP's buckets,
the one all-reduce per update starts after the backward pass (no overlap). Logged values are averaged over
the ranks at log steps, so metrics describe the global batch. Each process gets cores / processes-per-node
torch threads unless `threads=` or OMP_NUM_THREADS (torchrun sets 1) says otherwise.

Random streams. Weights are initialized from the run's seed on every rank and broadcast from rank 0 at the
start of `fit`, so ranks cannot start apart. The stream that draws noise (z, eps, dynamic binarization) is
seeded per rank (`noise_seed`), so ranks add independent noise; rank 0's stream is the single-process one.
The data order is the sampler's own generator, seeded by the run's seed alone: the same on every rank.

Files. Rank 0 alone writes the run directory (config, metrics, samples, checkpoints). The other ranks never
read it: at the start of `fit`, rank 0 sends them its starting state (fresh weights, or the checkpoint it
restored), so every rank resumes from the same checkpoint and a multi-node run needs the run directory
only on rank 0's node (the data, when it is a file, on every node). A checkpoint keeps every rank's noise
stream, so a resumed run with the same world size is bitwise equal to the uninterrupted one.

Closed-form players on the full training set (EM) run on every rank and rank 0's result is broadcast: correct,
with no speed-up. A closed-form player on minibatches cannot be averaged and is refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from jointkl.errors import JointKLError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def context() -> Context:
    """This process's place in the process group (one process: rank 0 of 1)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    env = os.environ
    world = dist.get_world_size()
    return Context(dist.get_rank(), world, int(env.get("LOCAL_RANK", dist.get_rank())),
                   int(env.get("LOCAL_WORLD_SIZE", world)))


_started = False      # rank 0 has sent its starting state (after that, an error cannot be `abort`ed)
_owned = False        # setup() created the process group (so teardown() destroys it)


def setup() -> Context:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, MASTER_ADDR, ...);
    nothing for a single process. CPU tensors go through gloo, CUDA tensors through NCCL."""
    global _started, _owned
    _started = False
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return context()
    if not dist.is_available():
        raise JointKLError("this torch build has no torch.distributed; run one process or install a full torch")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    _owned = True
    return context()


def teardown() -> None:
    """Leave the process group `setup` joined (one made by the caller is left alone)."""
    global _owned
    if _owned and dist.is_initialized():
        dist.destroy_process_group()
    _owned = False


def noise_seed(seed: int, rank: int) -> int:
    """Seed of a rank's noise stream; rank 0 keeps the run's seed (a 1-process run is unchanged), and the
    large stride keeps rank r of seed s away from rank 0 of seed s + r."""
    return seed + 1_000_003 * rank


def default_threads(ctx: Context) -> int | None:
    """Threads per process when neither `threads=` nor OMP_NUM_THREADS (which torchrun sets) says: the cores
    shared among this node's processes, so they do not oversubscribe them."""
    if not ctx.active or "OMP_NUM_THREADS" in os.environ:
        return None
    return max(1, (os.cpu_count() or 1) // ctx.local_world)


# ---- collectives ------------------------------------------------------------------------------------------

def broadcast_object(obj=None):
    """Rank 0's `obj` on every rank (pickled; for configs and checkpoint states)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj) -> list | None:
    """[obj of rank 0, obj of rank 1, ...] on rank 0, None elsewhere."""
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def _flat_groups(tensors: list[torch.Tensor]) -> dict:
    groups: dict = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    return groups


def broadcast_tensors(tensors: list[torch.Tensor]) -> None:
    """Overwrite `tensors` in place with rank 0's values: one broadcast per dtype and device."""
    for ts in _flat_groups(tensors).values():
        flat = torch.cat([t.reshape(-1) for t in ts])
        wire = flat.to(torch.uint8) if flat.dtype == torch.bool else flat     # gloo has no bool
        dist.broadcast(wire, src=0)
        for t, v in zip(ts, wire.split([t.numel() for t in ts])):
            t.copy_(v.view_as(t))


def average_gradients(params: list[torch.nn.Parameter], loss: torch.Tensor) -> torch.Tensor:
    """Average the gradients of `params` and the value of `loss` over all ranks, in one all-reduce.

    The buffer is [grads..., loss, had-a-grad flag per parameter]; a missing gradient counts as zero, so
    every rank sends the same size whatever its graph. A parameter no rank had a gradient for keeps None
    (Adam skips it, as in one process); finding out needs the flags on the host, which only a rank that
    lacked a gradient reads (never, for models whose graph does not depend on the data). Returns the
    averaged loss: non-finite on every rank as soon as one rank's loss or gradient is.
    """
    world = dist.get_world_size()
    if not params:
        return loss
    missing = [p.grad is None for p in params]
    grads = [torch.zeros_like(p) if m else p.grad for p, m in zip(params, missing)]
    flags = torch.tensor([0.0 if m else 1.0 for m in missing], dtype=grads[0].dtype, device=grads[0].device)
    sizes = [g.numel() for g in grads] + [1, len(params)]
    flat = torch.cat([*(g.reshape(-1) for g in grads), loss.detach().reshape(1).to(grads[0].dtype), flags])
    dist.all_reduce(flat)
    flat.div_(world)
    *views, mean_loss, had = flat.split(sizes)
    had = had.tolist() if any(missing) else [1.0] * len(params)   # .tolist() syncs a GPU: only when needed
    for p, v, h in zip(params, views, had):
        p.grad = v.view_as(p) if h > 0 else None
    return mean_loss.reshape(())


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Logged values averaged over the ranks (so metrics describe the global batch); at log steps only."""
    if not values:
        return values
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    dist.all_reduce(stacked)
    return dict(zip(values, (stacked / dist.get_world_size()).unbind()))


def start_message(obj=None):
    """The first collective of a run, from rank 0: its starting state, or {'abort': message}."""
    global _started
    _started = True
    return broadcast_object(obj)


def abort(message: str) -> None:
    """Rank 0 failed before training started: tell the ranks waiting for its starting state."""
    ctx = context()
    if ctx.active and ctx.main and not _started:
        start_message({"abort": message})
