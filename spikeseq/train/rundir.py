"""Run directories: one training run's config, provenance, metrics, checkpoints and artefacts.

Layout::

    RUN/
      run.json            versions, seed, command, git commit, status (running/finished/interrupted/failed)
      config.json         the resolved config (exact), config.toml the same as TOML
      metrics.jsonl       one JSON line per finished epoch
      checkpoints/last.pt checkpoints/best.pt   written atomically (temp file + fsync + rename)
      eval.json           test accuracy, confusion matrix, per-layer firing rates, a spike raster
      export/<target>.json / .md and export/<target>/...   from ``spikeseq export``
      profile.json profile.md profile.png                    from ``spikeseq profile``
      report/index.html report/report.md                     from ``spikeseq report``

Every file is written to a temporary name in the same directory and renamed into place, so an interrupted or
failed write (disk full, kill) never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from spikeseq import _atomic
from spikeseq.errors import ConfigError, OutputError
from spikeseq.provenance import git_commit, git_dirty

RUN_MARKER = "run.json"


def atomic_open(path: str | Path, mode: str = "wb") -> contextlib.AbstractContextManager[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it to ``path``, on error delete it
    (:func:`spikeseq._atomic.atomic_open`)."""
    return _atomic.atomic_open(path, mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, writer: Callable[[IO], Any], mode: str = "wb") -> None:
    """Call ``writer`` on a temporary file beside ``path`` and rename it over ``path`` (after an fsync)."""
    with atomic_open(path, mode) as f:
        writer(f)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text), mode="w")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON at ``path``; ``ConfigError`` when it is corrupt (``FileNotFoundError`` when it is missing)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: corrupt JSON ({e}); delete it and re-run the command that writes it") from None


def versions() -> dict[str, str]:
    """Versions of spikeseq, torch, numpy and Python, and the platform, for ``run.json``."""
    import numpy
    import torch

    import spikeseq

    return {"spikeseq": spikeseq.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


class RunDir:
    """Paths and small writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # paths ---------------------------------------------------------------------------------------------------
    @property
    def meta(self) -> Path:
        """``run.json``: versions, seed, command, git commit and status."""
        return self.path / RUN_MARKER

    @property
    def config_json(self) -> Path:
        """``config.json``: the resolved config."""
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        """``metrics.jsonl``: one JSON line per finished epoch."""
        return self.path / "metrics.jsonl"

    @property
    def ckpt_dir(self) -> Path:
        """``checkpoints/``."""
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        """``checkpoints/last.pt``, the checkpoint to resume from."""
        return self.ckpt_dir / "last.pt"

    @property
    def best(self) -> Path:
        """``checkpoints/best.pt``, the best validation result."""
        return self.ckpt_dir / "best.pt"

    @property
    def eval_json(self) -> Path:
        """``eval.json``, written by ``spikeseq eval``."""
        return self.path / "eval.json"

    @property
    def export_dir(self) -> Path:
        """``export/``, written by ``spikeseq export``."""
        return self.path / "export"

    @property
    def report_dir(self) -> Path:
        """``report/``, written by ``spikeseq report``."""
        return self.path / "report"

    def is_run(self) -> bool:
        """Whether the directory holds a ``run.json`` (is a run directory)."""
        return self.meta.is_file()

    # creation ------------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (for eval / export / profile / report); its ``run.json`` must be readable."""
        run = cls(path)
        if not run.path.is_dir():
            if run.path.exists():
                raise ConfigError(f"{run.path} is a file, not a run directory; give the --out directory of a "
                                  "`spikeseq train` run")
            raise ConfigError(f"run directory not found: {run.path} (create one with `spikeseq train CONFIG`)")
        if not run.is_run():
            raise ConfigError(f"{run.path} is not a spikeseq run directory (no {RUN_MARKER}); give the --out "
                              "directory of a `spikeseq train` run")
        run.read_meta()
        return run

    def read_meta(self) -> dict[str, Any]:
        """``run.json`` as a dict; :class:`ConfigError` (saying how to repair it) when it is corrupt."""
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            meta = e
        if not isinstance(meta, dict):
            raise ConfigError(
                f"{self.meta} is corrupt (expected a JSON object with the run's status, seed and versions, got "
                f"{meta if isinstance(meta, Exception) else type(meta).__name__}); nothing was changed. Restore it "
                f"from a backup, or write a minimal one with: echo '{{\"status\": \"finished\"}}' > {self.meta}")
        return meta

    @classmethod
    def prepare(cls, path: str | Path, config, *, force: bool = False, resume: bool = False,
                world_size: int = 1, argv: list[str] | None = None) -> RunDir:
        """Create (or, with ``resume``, reopen) the run directory for ``config``.

        A directory that already holds a run is refused unless ``resume`` (continue it) or ``force`` (delete it
        and start over). A non-empty directory that is not a run is always refused. Everything is checked before
        anything is written: a resume whose ``run.json`` or ``checkpoints/last.pt`` is damaged changes nothing.
        A new run directory is assembled under a temporary name and renamed into place, so it appears complete
        or not at all.
        """
        run = cls(path)
        if resume:
            from spikeseq.train import checkpoint

            if run.path.exists() and not run.path.is_dir():
                raise ConfigError(f"--resume: --out {run.path} is a file, not a run directory; give the --out "
                                  "directory of the run to continue")
            if not run.is_run():
                raise ConfigError(f"--resume: {run.path} holds no run to resume (no {RUN_MARKER}); give the --out "
                                  "directory of an interrupted `spikeseq train` run, or drop --resume to start one")
            if not run.last.is_file():
                raise ConfigError(f"--resume: {run.path} has no checkpoints/last.pt yet; start it again with "
                                  "--force")
            meta = run.read_meta()
            checkpoint.load(run.last)  # a damaged last.pt is refused before run.json is touched
            _atomic.remove_stale_temps(run.ckpt_dir)  # left by a checkpoint write that was killed
            _atomic.remove_stale_temps(run.path)
            meta.update(status="running", resumed=meta.get("resumed", 0) + 1, world_size=world_size)
            write_json(run.meta, meta)
            return run
        if run.path.exists():
            if not run.path.is_dir():
                raise ConfigError(f"--out {run.path} is a file, not a directory; give a new or empty directory "
                                  "(or remove the file)")
            if run.is_run():
                if not force:
                    raise ConfigError(f"{run.path} already holds a run; pass --resume to continue it or --force "
                                      "to delete it and start over (or choose another --out)")
            elif any(run.path.iterdir()):
                raise ConfigError(f"--out {run.path} is a non-empty directory that is not a spikeseq run; "
                                  "choose an empty or new directory")
        toml = None
        try:
            toml = config.to_toml()
        except ImportError:  # tomli_w missing: config.json is the exact copy anyway
            pass
        meta = {
            "status": "running", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": config.train.seed,
            "world_size": world_size, "command": argv if argv is not None else sys.argv, "git": git_commit(),
            "git_dirty": git_dirty(),
            "versions": versions(),
        }
        target = run.path.resolve() if run.path.is_symlink() else run.path.absolute()  # a linked folder stays linked
        parent = _atomic.ensure_dir(target.parent)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
        except OSError as e:
            raise OutputError(f"cannot create the run directory {target}: {parent} does not take new folders "
                              f"({e.strerror or e}); choose an --out in a writable folder") from None
        try:
            os.chmod(staging, 0o777 & ~_umask())
            (staging / "checkpoints").mkdir()
            write_text(staging / "config.json", config.to_json() + "\n")
            if toml is not None:
                write_text(staging / "config.toml", toml)
            write_json(staging / RUN_MARKER, meta)
            if target.is_dir() and run.is_run():  # --force: the old run goes only now, after all checks
                shutil.rmtree(target)
            try:
                os.replace(staging, target)  # over a missing or empty directory
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                    raise
                raise ConfigError(f"--out {target} was filled by another command while this run was being "
                                  "prepared (two commands writing the same run directory?); nothing of this run "
                                  "was written: wait for the other one, or choose another --out") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return run

    def set_status(self, status: str, **extra: Any) -> None:
        """Set ``status`` (running/finished/interrupted/failed) and any ``extra`` keys in ``run.json``, atomically."""
        meta = self.read_meta()
        meta.update(status=status, **extra)
        write_json(self.meta, meta)

    def config(self):
        """The run's resolved :class:`~spikeseq.train.config.RunConfig`, read from ``config.json``."""
        from spikeseq.train.config import load_json

        try:
            return load_json(self.config_json)
        except ConfigError as e:
            if "corrupt JSON" not in str(e) and "must be a table" not in str(e):
                raise
            backup = self.path / "config.toml"
            fix = (f"it is the resolved config `spikeseq train` wrote; {backup} holds the same config as TOML: "
                   f"retrain from it (`spikeseq train {backup} --out {self.path} --force`) or restore config.json "
                   "from a backup") if backup.is_file() else (
                   "it is the resolved config `spikeseq train` wrote; restore it from a backup or retrain the run")
            raise ConfigError(f"{e}; {fix}") from None

    # metrics -------------------------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one epoch's ``record`` to ``metrics.jsonl`` and fsync it."""
        line = json.dumps(record) + "\n"
        with open(self.metrics, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (``[]`` without one; a line cut by a kill is skipped)."""
        if not self.metrics.is_file():
            return []
        out = []
        for line in self.metrics.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: ignore it
                continue
        return out

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep only the records of epochs ``<= last_epoch`` (those covered by the checkpoint resumed from)."""
        keep = [r for r in self.read_metrics() if r.get("epoch", 0) <= last_epoch]
        write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in keep))
