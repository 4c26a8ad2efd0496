"""Checkpoints: exact round trip, checksums that catch one flipped byte, and fallback to the newest good one."""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import jointkl as jk
from jointkl.errors import JointKLError
from jointkl.training import checkpoint


def weights(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"enc.weight": torch.randn(4, 3, generator=g), "enc.bias": torch.randn(4, generator=g),
            "steps_seen": torch.tensor(seed, dtype=torch.int64)}


def state(step: int) -> dict:
    gen = torch.Generator().manual_seed(step)
    return {"step": step, "optimizers": {"vae": {"lr": 1e-3, "exp_avg": torch.full((2, 2), float(step))}},
            "sampler": {"gen": gen.get_state(), "perm": torch.randperm(10, generator=gen), "pos": 3},
            "rng_cpu": torch.get_rng_state(), "rng_cuda": []}


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def save_steps(ckpt_dir: Path, steps, keep: int = 10) -> dict[int, Path]:
    return {s: checkpoint.save(ckpt_dir, s, weights(s), state(s), keep=keep) for s in steps}


def test_round_trip_is_exact(tmp_path):
    path = checkpoint.save(tmp_path, 7, weights(7), state(7))
    assert path == tmp_path / "step-00000007"
    assert {p.name for p in path.iterdir()} == {"model.safetensors", "state.pt", "manifest.json"}
    assert checkpoint.verify(path) is None
    got_path, w, s = checkpoint.load_latest(tmp_path)
    assert got_path == path
    ref_w, ref_s = weights(7), state(7)
    assert w.keys() == ref_w.keys()
    for k in ref_w:
        assert w[k].dtype == ref_w[k].dtype and torch.equal(w[k], ref_w[k])
    assert s["step"] == 7 and s["sampler"]["pos"] == 3 and s["optimizers"]["vae"]["lr"] == 1e-3
    assert torch.equal(s["optimizers"]["vae"]["exp_avg"], ref_s["optimizers"]["vae"]["exp_avg"])
    assert torch.equal(s["sampler"]["perm"], ref_s["sampler"]["perm"])
    assert torch.equal(s["sampler"]["gen"], ref_s["sampler"]["gen"])
    assert torch.equal(s["rng_cpu"], ref_s["rng_cpu"])
    assert checkpoint.load_latest(tmp_path, with_state=False)[2] is None


def test_saving_a_step_again_replaces_it(tmp_path):
    checkpoint.save(tmp_path, 3, weights(1), state(3))
    checkpoint.save(tmp_path, 3, weights(2), state(3))
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step-00000003"]
    assert torch.equal(checkpoint.load_latest(tmp_path)[1]["enc.weight"], weights(2)["enc.weight"])


@pytest.mark.parametrize("name", ["model.safetensors", "state.pt"])
def test_verify_catches_one_flipped_byte(tmp_path, name):
    path = checkpoint.save(tmp_path, 1, weights(1), state(1))
    flip_byte(path / name)
    problem = checkpoint.verify(path)
    assert problem is not None and name in problem


@pytest.mark.parametrize("damage", ["delete manifest", "garble manifest", "delete weights", "truncate state"])
def test_verify_catches_missing_or_broken_files(tmp_path, damage):
    path = checkpoint.save(tmp_path, 1, weights(1), state(1))
    if damage == "delete manifest":
        (path / "manifest.json").unlink()
    elif damage == "garble manifest":
        (path / "manifest.json").write_text('{"step": 1, "sha2')
    elif damage == "delete weights":
        (path / "model.safetensors").unlink()
    else:
        (path / "state.pt").write_bytes((path / "state.pt").read_bytes()[:50])
    assert checkpoint.verify(path) is not None


@pytest.mark.parametrize("name", ["model.safetensors", "state.pt"])
def test_load_latest_skips_a_corrupt_newest(tmp_path, capsys, name):
    paths = save_steps(tmp_path, [1, 2, 3])
    flip_byte(paths[3] / name)
    path, w, s = checkpoint.load_latest(tmp_path)
    assert path == paths[2] and s["step"] == 2
    assert torch.equal(w["enc.weight"], weights(2)["enc.weight"])
    err = capsys.readouterr().err
    assert "skipping corrupt checkpoint" in err and "step-00000003" in err and name in err
    assert paths[3].exists()                 # reported and skipped, never deleted


def test_all_corrupt_is_an_error(tmp_path, capsys):
    paths = save_steps(tmp_path, [1, 2])
    for p in paths.values():
        flip_byte(p / "model.safetensors")
    with pytest.raises(JointKLError, match="every checkpoint"):
        checkpoint.load_latest(tmp_path)
    assert capsys.readouterr().err.count("skipping corrupt checkpoint") == 2


@pytest.mark.parametrize("make", [lambda d: None, lambda d: d.mkdir()])
def test_no_checkpoint_is_an_error(tmp_path, make):
    d = tmp_path / "checkpoints"
    make(d)
    assert checkpoint.list_checkpoints(d) == []
    with pytest.raises(JointKLError, match="no checkpoint"):
        checkpoint.load_latest(d)


def test_keep_prunes_older_checkpoints(tmp_path):
    save_steps(tmp_path, [1, 2, 3, 4, 5], keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step-00000005", "step-00000004"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004", "step-00000005"]   # no leftovers


def test_stale_temporary_folder_is_ignored(tmp_path):
    paths = save_steps(tmp_path, [1, 2])
    stale = tmp_path / ".tmp-step-00000003-99999"       # a crash mid-write leaves this behind
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half a file")
    (tmp_path / "step-00000009").write_text("a file, not a checkpoint folder")
    assert checkpoint.list_checkpoints(tmp_path) == [paths[2], paths[1]]
    assert checkpoint.load_latest(tmp_path)[0] == paths[2]
    checkpoint.save(tmp_path, 3, weights(3), state(3))   # the same step written again replaces nothing stale
    assert checkpoint.load_latest(tmp_path)[0] == tmp_path / "step-00000003"


def test_checkpoint_steps_sort_numerically(tmp_path):
    save_steps(tmp_path, [9, 10, 100, 99])
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "step-00000100", "step-00000099", "step-00000010", "step-00000009"]


# --- through a real run -------------------------------------------------------------------------------

def test_load_falls_back_when_the_newest_checkpoint_is_corrupt(trained_run, capsys):
    ckpts = trained_run / "checkpoints"
    newest, older = ckpts / "step-00000020", ckpts / "step-00000010"
    flip_byte(newest / "model.safetensors")
    capsys.readouterr()
    model = jk.load(trained_run, device="cpu")
    err = capsys.readouterr().err
    assert "skipping corrupt checkpoint" in err and "step-00000020" in err
    expected = load_file(older / "model.safetensors")
    got = model.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_resume_continues_from_the_newest_good_checkpoint(trained_run, cli):
    newest = trained_run / "checkpoints" / "step-00000020"
    uninterrupted = load_file(newest / "model.safetensors")
    flip_byte(newest / "state.pt")
    code, _, err = cli("train", "vae", "--out", trained_run, "--resume")
    assert code == 0, err
    assert "skipping corrupt checkpoint" in err
    assert checkpoint.verify(newest) is None                        # rewritten, good again
    resumed = load_file(newest / "model.safetensors")              # steps 11-20 replayed from step 10 ...
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)   # ... bit for bit on CPU
    with open(trained_run / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [5, 10, 15, 20]


def test_load_at_a_given_step(tmp_path):
    import jointkl as jk
    jk.train("vae", data="binary2x2", steps=20, ckpt_every=10, out=tmp_path / "r", hidden=8, layers=1)
    early, late = jk.load(tmp_path / "r", step=10), jk.load(tmp_path / "r")
    assert not all(torch.equal(a, b) for a, b in zip(early.state_dict().values(), late.state_dict().values()))
    with pytest.raises(JointKLError, match="no checkpoint at step 15"):
        jk.load(tmp_path / "r", step=15)


# --- the manifest by its schema, stale temporaries, failed writes -------------------------------------------

BAD_MANIFESTS = {   # case -> the manifest, given the real digests {name: sha256}
    "a list": lambda d: [],
    "null": lambda d: None,
    "checksums as a list": lambda d: {"step": 2, "sha256": list(d.values())},
    "no checksums": lambda d: {"step": 2},
    "an empty checksum map": lambda d: {"step": 2, "sha256": {}},
    "no checksum for state.pt": lambda d: {"step": 2, "sha256": {"model.safetensors": d["model.safetensors"]}},
    "a checksum that is not hex": lambda d: {"step": 2, "sha256": {**d, "state.pt": "z" * 64}},
    "a checksum as a number": lambda d: {"step": 2, "sha256": {**d, "state.pt": 1}},
    "a name outside the folder": lambda d: {"step": 2, "sha256": {**d, "../step-00000001/state.pt": d["state.pt"]}},
    "another step": lambda d: {"step": 7, "sha256": d},
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_a_manifest_off_its_schema_counts_as_corrupt(tmp_path, capsys, case):
    paths = save_steps(tmp_path, [1, 2])
    real = {name: checkpoint.sha256(paths[2] / name) for name in checkpoint.FILES}
    (paths[2] / "manifest.json").write_text(json.dumps(BAD_MANIFESTS[case](real)))
    assert checkpoint.verify(paths[2]) is not None
    path, w, s = checkpoint.load_latest(tmp_path)
    assert path == paths[1] and s["step"] == 1                      # fell back to the previous one
    assert f"skipping corrupt checkpoint {paths[2]}" in capsys.readouterr().err
    assert checkpoint.newest(tmp_path) == paths[1]


def test_a_manifest_with_an_extra_checksummed_file_verifies_it(tmp_path):
    path = checkpoint.save(tmp_path, 1, weights(1), state(1))
    (path / "notes.txt").write_text("x")
    m = json.loads((path / "manifest.json").read_text())
    m["sha256"]["notes.txt"] = checkpoint.sha256(path / "notes.txt")
    (path / "manifest.json").write_text(json.dumps(m))
    assert checkpoint.verify(path) is None
    (path / "notes.txt").write_text("y")
    assert "notes.txt" in checkpoint.verify(path)


def test_remove_stale_clears_temporaries_and_puts_back_a_set_aside_checkpoint(tmp_path):
    paths = save_steps(tmp_path, [1, 2])
    (tmp_path / ".tmp-step-00000003-99999").mkdir()
    (tmp_path / ".tmp-step-00000003-99999" / ".tmpab12").write_bytes(b"half")
    os.rename(paths[2], tmp_path / ".old-step-00000002-99999")      # killed while rewriting step 2
    shutil.copytree(paths[1], tmp_path / ".old-step-00000001-99998")   # step 1 is in place: this copy goes
    removed = checkpoint.remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == [".old-step-00000001-99998", ".tmp-step-00000003-99999"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001", "step-00000002"]
    assert checkpoint.verify(paths[2]) is None


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   SafetensorError("Error while serializing: I/O error: No space left on device "
                                                   "(os error 28) at path \"x\"")])
def test_a_failed_write_is_one_error_and_leaves_no_temporary(tmp_path, monkeypatch, error):
    paths = save_steps(tmp_path, [1])

    def full(*a, **kw):
        raise error
    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(JointKLError) as e:
        checkpoint.save(tmp_path, 2, weights(2), state(2))
    assert str(e.value) == (f"could not write checkpoint to {tmp_path} (No space left on device); free space or fix "
                            "permissions, then resume with --resume")
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001"] and checkpoint.verify(paths[1]) is None


def test_rewriting_a_step_that_fails_keeps_the_old_one(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path, 3, weights(1), state(3))
    rename = os.rename

    def failing(src, dst):
        if Path(src).name.startswith(".tmp-"):
            raise OSError(errno.EIO, "Input/output error")
        return rename(src, dst)
    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(JointKLError, match=r"\(Input/output error\)"):
        checkpoint.save(tmp_path, 3, weights(2), state(3))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000003"]
    assert checkpoint.verify(path) is None
    assert torch.equal(checkpoint.load_latest(tmp_path)[1]["enc.weight"], weights(1)["enc.weight"])
