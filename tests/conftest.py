"""Shared test helpers: tiny run settings, an in-process CLI runner, and one trained run to read from."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# The tests' nets are small: one thread is as fast as two, and it cannot busy-wait against another process
# sharing the cores (which made matmuls ~25x slower on a 2-core machine).
torch.set_num_threads(1)

# Small enough that a run takes well under a second on one CPU thread.
TINY_VAE_KW = dict(hidden=16, layers=1, latent_dim=2, batch_size=32, log_every=5, ckpt_every=10, device="cpu")


@pytest.fixture
def tiny() -> dict:
    """Keyword options for a fast VAE run (pass to `jointkl.train(..., **tiny)`)."""
    return dict(TINY_VAE_KW)


@pytest.fixture
def tiny_argv() -> list[str]:
    """The same options as `key=value` words for `jointkl train vae ...`."""
    return [f"{k}={v}" for k, v in TINY_VAE_KW.items()]


class CLI:
    """Runs `jointkl.cli.main(argv)` in-process; returns (exit code, stdout, stderr)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *argv) -> tuple[int, str, str]:
        from jointkl.cli import main
        self.capsys.readouterr()                       # drop anything printed before
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:                        # argparse usage errors
            code = e.code
        out, err = self.capsys.readouterr()
        return code, out, err

    def error(self, *argv) -> str:
        """Run argv, assert it fails the CLI's way for bad input, and return the error line."""
        code, _, err = self(*argv)
        return assert_one_line_error(code, err)


@pytest.fixture
def cli(capsys) -> CLI:
    return CLI(capsys)


def assert_one_line_error(code: int, err: str) -> str:
    """The CLI's contract for bad input: exit 2, one `jointkl: error:` line on stderr, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip("\n").splitlines()
             if not ln.startswith("jointkl: preset ")]   # the note naming a run's preset is not the error
    assert len(lines) == 1, err
    assert lines[0].startswith("jointkl: error: "), err
    return lines[0]


@pytest.fixture(scope="session")
def _trained_run(tmp_path_factory) -> Path:
    """A tiny VAE on binary2x2, 20 steps, checkpoints at 10 and 20; trained once per session (read-only)."""
    from jointkl.cli import main
    out = tmp_path_factory.mktemp("trained") / "run"
    code = main(["train", "vae", "--data", "binary2x2", "--steps", "20", "--out", str(out),
                 *(f"{k}={v}" for k, v in TINY_VAE_KW.items())])
    assert code == 0
    return out


@pytest.fixture
def trained_run(_trained_run, tmp_path) -> Path:
    """A private copy of the session's trained run, safe to modify."""
    dst = tmp_path / "run"
    shutil.copytree(_trained_run, dst)
    return dst
