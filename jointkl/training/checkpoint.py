"""Checkpoints: weights in safetensors, trainer state (optimizers, RNG, data order, step) in a torch file,
and a manifest of SHA-256 checksums. A checkpoint is written into a temporary folder, fsynced and renamed
into place, so a crash leaves either the old set or the new one, never half a checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from jointkl.errors import JointKLError

PREFIX = "step-"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(ckpt_dir: Path, step: int, weights: dict[str, torch.Tensor], state: dict, keep: int = 3) -> Path:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"{PREFIX}{step:08d}"
    tmp = ckpt_dir / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / "model.safetensors")
    torch.save(state, tmp / "state.pt")
    files = {name: sha256(tmp / name) for name in ("model.safetensors", "state.pt")}
    (tmp / "manifest.json").write_text(json.dumps({"step": step, "sha256": files}, indent=1))
    for name in (*files, "manifest.json"):
        _fsync(tmp / name)
    if final.exists():                     # same step written again (e.g. the final checkpoint)
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync(ckpt_dir)
    for old in list_checkpoints(ckpt_dir)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def exists(ckpt_dir: Path, step: int) -> bool:
    """A checkpoint folder for `step` is in place (written whole: folders appear only by rename)."""
    return (ckpt_dir / f"{PREFIX}{step:08d}").exists()


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoint folders, newest first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith(PREFIX)), reverse=True)


def verify(path: Path) -> str | None:
    """None if the checkpoint's files match its manifest, else what is wrong."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        for name, digest in manifest["sha256"].items():
            if sha256(path / name) != digest:
                return f"checksum mismatch in {name}"
    except (OSError, ValueError, KeyError) as e:
        return f"unreadable manifest ({type(e).__name__})"
    return None


def load_latest(ckpt_dir: Path, with_state: bool = True, step: int | None = None) -> tuple[Path, dict, dict | None]:
    """Newest checkpoint (or the one at `step`) that passes its checksums; corrupt ones are reported and skipped."""
    found = list_checkpoints(ckpt_dir)
    if step is not None:
        found = [p for p in found if p.name == f"{PREFIX}{step:08d}"]
        if not found:
            have = ", ".join(str(int(p.name[len(PREFIX):])) for p in list_checkpoints(ckpt_dir)) or "none"
            raise JointKLError(f"no checkpoint at step {step} in {ckpt_dir} (have: {have})")
    for path in found:
        problem = verify(path)
        if problem:
            print(f"jointkl: skipping corrupt checkpoint {path} ({problem})", file=sys.stderr)
            continue
        weights = load_file(path / "model.safetensors")
        state = torch.load(path / "state.pt", weights_only=True) if with_state else None
        return path, weights, state
    if found:
        raise JointKLError(f"every checkpoint in {ckpt_dir} is corrupt; retrain with --force")
    raise JointKLError(f"no checkpoint in {ckpt_dir}; the run has not saved one yet (train it, or resume it)")
