"""The Python interface (jointkl.api): a run records its data so that eval and resume find it again, and a run
on in-memory data asks for the data when resumed."""
import pytest
import torch


def test_run_on_npy_file_can_be_evaluated_and_resumed(tmp_path, cli, monkeypatch):
    """config.yaml records the file's absolute path, so eval and --resume find the data again."""
    import numpy as np
    x = np.random.default_rng(0).normal(size=(200, 2)).astype("float32")
    np.save(tmp_path / "pts.npy", x)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train", "vae", "--data", "pts.npy", "--steps", "10", "--out", "r", "hidden=8", "layers=1")
    assert code == 0, err
    monkeypatch.chdir("/")
    assert cli("eval", tmp_path / "r", "--metrics", "elbo")[0] == 0
    assert cli("train", "vae", "--out", tmp_path / "r", "--resume", "--steps", "20")[0] == 0


def test_in_memory_run_resume_asks_for_the_data(tmp_path):
    import jointkl as jk
    x = torch.randn(100, 2)
    jk.train("vae", data=x, steps=5, out=tmp_path / "r", hidden=8, layers=1)
    with pytest.raises(jk.JointKLError, match="pass the same data again"):
        jk.train("vae", out=tmp_path / "r", resume=True, steps=10)
    model = jk.train("vae", data=x, out=tmp_path / "r", resume=True, steps=10)
    assert model is not None
