"""Checkpoints: weights in safetensors, trainer state (optimizers, RNG, data order, step) in a torch file,
and a manifest of SHA-256 checksums. A checkpoint is written into a temporary folder, fsynced and renamed
into place, so a crash leaves either the old set or the new one, never half a checkpoint; a failed write
(disk full, no permission) is one `JointKLError` naming the folder, and the newest good checkpoint stays
the newest. A manifest is read by a schema: a SHA-256 digest for every file the loader reads, or the
checkpoint counts as corrupt.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jointkl.errors import JointKLError, one_line

PREFIX = "step-"
FILES = ("model.safetensors", "state.pt")          # what the loader reads; each needs its digest
MANIFEST = "manifest.json"
STEP = re.compile(r"step-(\d{8})")                  # a checkpoint folder
TMP = re.compile(r"\.(tmp|old)-step-(\d{8})-\d+")   # a write in progress, or a replaced checkpoint set aside
DIGEST = re.compile(r"[0-9a-f]{64}")


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


def write_error(e: BaseException) -> str:
    """Why a write failed, in a few words: 'No space left on device', 'Permission denied', ..."""
    if isinstance(e, OSError):
        return e.strerror or one_line(e)
    m = re.search(r"I/O error: (.+?) \(os error \d+\)", str(e))      # safetensors' wording of an OSError
    return m.group(1) if m else one_line(e)


def save(ckpt_dir: Path, step: int, weights: dict[str, torch.Tensor], state: dict, keep: int = 3) -> Path:
    """Write checkpoint `step` and keep the newest `keep`. Disk full or no permission: a `JointKLError`
    naming `ckpt_dir`, with no temporary folder left and every earlier checkpoint in place."""
    final = ckpt_dir / f"{PREFIX}{step:08d}"
    tmp = ckpt_dir / f".tmp-{final.name}-{os.getpid()}"
    old = ckpt_dir / f".old-{final.name}-{os.getpid()}"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / "model.safetensors")
        torch.save(state, tmp / "state.pt")
        files = {name: sha256(tmp / name) for name in FILES}
        (tmp / MANIFEST).write_text(json.dumps({"step": step, "sha256": files}, indent=1))
        for name in (*files, MANIFEST):
            _fsync(tmp / name)
        if final.exists():                 # same step written again (e.g. a corrupt one replayed): set it aside
            os.rename(final, old)          # until the new one is in place, so a failed rename loses nothing
        try:
            os.rename(tmp, final)
        except OSError:
            if old.exists() and not final.exists():
                os.rename(old, final)
            raise
        _fsync(ckpt_dir)
    except (OSError, SafetensorError, RuntimeError) as e:   # torch.save reports a failed write as RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        raise JointKLError(f"could not write checkpoint to {ckpt_dir} ({write_error(e)}); free space or fix "
                           "permissions, then resume with --resume") from None
    shutil.rmtree(old, ignore_errors=True)
    for stale in list_checkpoints(ckpt_dir)[keep:]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def exists(ckpt_dir: Path, step: int) -> bool:
    """A checkpoint folder for `step` is in place (written whole: folders appear only by rename)."""
    return (ckpt_dir / f"{PREFIX}{step:08d}").exists()


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoint folders, newest first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith(PREFIX)), reverse=True)


def step_of(path: Path) -> int:
    """The step of a checkpoint folder, from its name (step-NNNNNNNN)."""
    return int(path.name[len(PREFIX):])


def remove_stale(ckpt_dir: Path) -> list[Path]:
    """Clear what interrupted writes left (for the run folder's one writer, at its start): `.tmp-step-*`
    folders are removed; a `.old-step-N-*` folder (a checkpoint set aside while step N was rewritten) is put
    back if step N is missing and it verifies, else removed. Returns what was removed."""
    removed = []
    if not ckpt_dir.is_dir():
        return removed
    for p in sorted(ckpt_dir.iterdir()):
        m = TMP.fullmatch(p.name)
        if not m or not p.is_dir() or p.is_symlink():
            continue
        final = ckpt_dir / f"{PREFIX}{m.group(2)}"
        if m.group(1) == "old" and not final.exists() and verify(p) is None:
            os.rename(p, final)
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _manifest_problem(path: Path, manifest) -> str | None:
    """What the manifest lacks against its schema: {"step": N, "sha256": {name: 64 hex digits, ...}} with a
    digest for every file in FILES and only plain file names."""
    if not isinstance(manifest, dict):
        return f"manifest is {type(manifest).__name__}, not an object"
    digests = manifest.get("sha256")
    if not isinstance(digests, dict):
        return "manifest has no map of sha256 checksums"
    missing = [name for name in FILES if name not in digests]
    if missing:
        return f"manifest has no checksum for {missing[0]}"
    for name, digest in digests.items():
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            return f"manifest names {name!r}, not a file of the checkpoint"
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            return f"manifest's checksum of {name} is not a sha256 hex digest"
    step = manifest.get("step")
    if "step" in manifest and (isinstance(step, bool) or not isinstance(step, int)):
        return "manifest's step is not an integer"
    if isinstance(step, int) and STEP.fullmatch(path.name) and step != step_of(path):
        return f"manifest says step {step}, the folder step {step_of(path)}"
    return None


def verify(path: Path) -> str | None:
    """None if the checkpoint's manifest follows its schema and its files match it, else what is wrong."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        return f"unreadable manifest ({type(e).__name__})"
    problem = _manifest_problem(path, manifest)
    if problem:
        return problem
    for name, digest in manifest["sha256"].items():
        try:
            if sha256(path / name) != digest:
                return f"checksum mismatch in {name}"
        except OSError as e:
            return f"unreadable {name} ({type(e).__name__})"
    return None


def newest(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint that passes its checksums (what `load_latest` would load), quietly; None if none."""
    return next((p for p in list_checkpoints(ckpt_dir) if verify(p) is None), None)


def load_latest(ckpt_dir: Path, with_state: bool = True, step: int | None = None) -> tuple[Path, dict, dict | None]:
    """Newest checkpoint (or the one at `step`) that passes its checksums; corrupt ones are reported and skipped."""
    found = list_checkpoints(ckpt_dir)
    if step is not None:
        found = [p for p in found if p.name == f"{PREFIX}{step:08d}"]
        if not found:
            have = ", ".join(str(step_of(p)) for p in list_checkpoints(ckpt_dir)) or "none"
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
