"""Where a number came from: the code that computed it (jointkl's version and, in a git checkout, its commit).
A run records it in its config.yaml (`code:`), the report and the results page print it."""
from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from pathlib import Path


@functools.cache
def code() -> dict[str, str | None]:
    """{'jointkl': the installed version, 'commit': the short commit of the source tree, with '+changes' when
    it has uncommitted changes (None outside a git checkout)}; looked up once per process."""
    try:
        version = importlib.metadata.version("jointkl")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    here = Path(__file__).parent
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=here, timeout=5)
    try:                          # an installed copy inside some other repository (a venv in a project) has no commit
        tracked = git("ls-files", "--error-unmatch", "--", Path(__file__).name).returncode == 0
        commit = (git("rev-parse", "--short", "HEAD").stdout.strip() or None) if tracked else None
        if commit:
            dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".").stdout.strip()
            commit += "+changes" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"jointkl": version, "commit": commit}


def code_text(c: dict | None) -> str:
    """'jointkl 0.1.0 (commit abc1234)' for a `code()` record; a run from before runs recorded it says so."""
    if not isinstance(c, dict):
        return "code not recorded"
    return f"jointkl {c.get('jointkl')}" + (f" (commit {c['commit']})" if c.get("commit") else "")
