"""The code record a run and the results page carry: this checkout's commit, none for a copy some other
repository does not track (an installed jointkl inside a user's project)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

from jointkl import provenance


def test_this_checkout_records_its_commit_and_version():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(provenance.__file__).parent).stdout.strip()
    c = provenance.code()
    assert c["commit"] in (head, f"{head}+changes") and c["jointkl"]
    assert provenance.code_text(c) == f"jointkl {c['jointkl']} (commit {c['commit']})"
    assert provenance.code_text(None) == "code not recorded"


def test_a_copy_inside_another_repository_has_no_commit(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    copy = tmp_path / "venv" / "jointkl" / "provenance.py"
    copy.parent.mkdir(parents=True)
    shutil.copy(provenance.__file__, copy)
    spec = importlib.util.spec_from_file_location("provenance_copy", copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.code()["commit"] is None
