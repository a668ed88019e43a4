"""Child process of the kill tests: ``python -m tests.faults._train_child MODE N spikeseq-argv...``.

MODE ``none`` runs the command; ``step`` SIGKILLs the process right after optimizer step N; ``save`` SIGKILLs it in
the middle of the N-th checkpoint write of this process (half the bytes written to the temporary file).
"""

from __future__ import annotations

import functools
import io
import os
import signal
import sys

import torch

from spikeseq.cli import main
from spikeseq.train import loop


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def run(mode: str, n: int, argv: list[str]) -> int:
    if mode == "step":
        def on_step(step: int) -> None:
            if step == n:
                _kill()

        loop.fit = functools.partial(loop.fit, on_step=on_step)
    elif mode == "save":
        real = torch.save
        calls = [0]

        def killing_save(obj, f, *a, **k):
            calls[0] += 1
            if calls[0] == n:
                buf = io.BytesIO()
                real(obj, buf, *a, **k)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.fsync(f.fileno())
                _kill()
            return real(obj, f, *a, **k)

        torch.save = killing_save
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
