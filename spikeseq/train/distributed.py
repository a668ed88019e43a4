"""Data-parallel training through torchrun: gloo on CPU, NCCL on GPU.

``spikeseq train CONFIG --nproc N`` prepares the run directory and then re-launches itself under
``python -m torch.distributed.run --standalone --nproc_per_node N``. Each worker reads its rank from the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), takes an equal slice of every global batch and averages
gradients with DDP. The loss of a slice is ``sum / global_batch * world_size``, so the averaged gradient equals the
single-process gradient of the whole global batch even when the last batch does not divide evenly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from spikeseq.errors import ConfigError


@dataclass
class DistInfo:
    """This process's place in data-parallel training: ``rank`` of ``world`` processes, GPU ``local_rank``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains (DDP on)."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the process that writes files and prints)."""
        return self.rank == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when not started by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    """The device for ``train.device`` (``cpu``, ``cuda``, ``auto``); ``ConfigError``: ``cuda`` without a GPU."""
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but no CUDA GPU is available; use 'cpu' or 'auto'")
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init(device: torch.device) -> DistInfo:
    """Join the process group when started by torchrun; a single process otherwise."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return info


def shutdown(synchronise: bool = False) -> None:
    """Leave the process group. After a normal finish (``synchronise=True``) every rank first meets at a barrier:
    a rank that tears down gloo while its peer still holds the connection can abort ("terminate called without
    an active exception"). After an error no barrier is attempted (a dead peer would make it hang)."""
    if dist.is_available() and dist.is_initialized():
        try:
            if synchronise:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over the ranks in place and return it (unchanged in a single process)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_objects(obj: object, info: DistInfo) -> list[object]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    out: list[object] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def any_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if ``flag`` is true on any rank (e.g. Ctrl-C seen by one worker)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``spikeseq <argv>`` in ``nproc`` processes with torchrun; returns its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "spikeseq.cli", *argv]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen(cmd, env=env)
    interrupts = 0
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the workers too: they finish the step, save last.pt and exit; wait for them.
            # A second Ctrl-C stops torchrun (and its workers) at once.
            interrupts += 1
            if interrupts >= 2:
                proc.terminate()
