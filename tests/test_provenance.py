"""spikeseq.provenance: code that differs from the commit is dirty, artifacts under results/ are not; a bench
record names its command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from spikeseq import provenance


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_results_artifacts_do_not_make_a_checkout_dirty(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run-s0.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "_ROOT", tmp_path)
    assert provenance.git_dirty() is False
    (tmp_path / "results" / "run-s0.json").write_text('{"acc": 0.9}')     # another run's artifact rewritten
    (tmp_path / "untracked.txt").write_text("scratch")
    assert provenance.git_dirty() is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_dirty() is True


def test_bench_command_is_the_bench_and_its_arguments(monkeypatch):
    from spikeseq.provenance import bench_command

    monkeypatch.setattr(sys, "argv", ["/x/spikeseq", "bench", "wkv", "--reps", "6", "--json", "a.json"])
    assert bench_command("wkv") == "spikeseq bench wkv --reps 6 --json a.json"
    monkeypatch.setattr(sys, "argv", ["pytest", "-q", "tests"])   # called through spikeseq.cli.main in a test
    assert bench_command("sim") == "spikeseq bench sim"
