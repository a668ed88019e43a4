"""Run under torchrun (2 processes, gloo) by tests/train/test_ddp_resume.py; not a test module itself.

``python -m torch.distributed.run --nproc_per_node 2 ddp_resume_worker.py CONFIG.json ROOT KILL_AT`` trains the
config three ways in the same process group: ``ROOT/full`` uninterrupted, ``ROOT/killed`` stopped without saving
at optimizer step ``KILL_AT`` (every rank raises at once, as a kill would), then ``ROOT/killed`` resumed from its
``last.pt``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from spikeseq.cli import leave
from spikeseq.train import distributed
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir


class Killed(Exception):
    """The simulated kill."""


def _prepared(path: Path, cfg, info) -> RunDir:
    if info.main:
        RunDir.prepare(path, cfg, world_size=info.world)
    distributed.barrier(info)
    return RunDir(path)


def main() -> int:
    cfg = from_dict(json.loads(Path(sys.argv[1]).read_text()))
    root, kill_at = Path(sys.argv[2]), int(sys.argv[3])
    info = distributed.init(torch.device("cpu"))
    fit(cfg, _prepared(root / "full", cfg, info), quiet=True)

    def kill(step: int) -> None:
        if step == kill_at:
            raise Killed

    killed = _prepared(root / "killed", cfg, info)
    try:
        fit(cfg, killed, on_step=kill, quiet=True)
        raise SystemExit("the run was not killed")
    except Killed:
        pass
    distributed.barrier(info)
    fit(cfg, killed, resume=True, quiet=True)
    distributed.shutdown(synchronise=True)
    return 0


if __name__ == "__main__":
    leave(main())  # as spikeseq's own torchrun workers leave (spikeseq.cli.leave)
