"""Where a result came from: the git commit of the spikeseq checkout, whether it had local changes, and the CPU.

Used by every command that writes a run or a result file (``spikeseq train``, ``spikeseq bench ...``), so that a
number in ``results/`` names the code that produced it. Outside a git checkout (an installed wheel) both are
``None``.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["bench_command", "command_line", "cpu_model", "git_commit", "git_dirty"]

_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str, timeout: float) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> str | None:
    """The commit hash of the checkout spikeseq runs from, or ``None`` outside a git checkout."""
    out = _git("rev-parse", "HEAD", timeout=5)
    return out.strip() or None if out is not None else None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (``None``: not a git checkout), the ``results/`` folder aside:
    it holds the artifacts that runs write, so a run started while another run's artifact is being updated in the
    same checkout still ran the committed code."""
    out = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", timeout=10)
    return bool(out.strip()) if out is not None else None


def command_line(*words: str) -> str:
    """``spikeseq WORDS...`` and the arguments that follow the last word on this process's command line (just
    ``spikeseq WORDS...`` when the command was called some other way, e.g. through ``spikeseq.cli.main`` in a test)."""
    argv, last = sys.argv, words[-1]
    return " ".join(["spikeseq", *words, *(argv[argv.index(last) + 1:] if last in argv else [])])


def bench_command(name: str) -> str:
    """``spikeseq bench NAME`` and its arguments (:func:`command_line`)."""
    return command_line("bench", name)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
