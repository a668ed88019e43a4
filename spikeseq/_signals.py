"""Ctrl-C that is never lost (standard library only).

Python turns SIGINT into ``KeyboardInterrupt`` at the next bytecode; C extensions that call back into Python while
they initialise (torch's import does) can clear that exception, and the command then runs on as if nothing had
happened. :func:`install` puts a handler in place that also *records* the interrupt; :func:`check` re-raises it at
safe points (after imports, before a run directory is created), so Ctrl-C at any moment ends the command with exit
code 130. The training loop installs its own handler while it trains (finish the step, save, exit 130).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_interrupted = False


def _handler(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def install() -> Any:
    """Install the recording SIGINT handler (main thread only); returns the previous handler for :func:`restore`."""
    global _interrupted
    _interrupted = False
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _handler)


def restore(previous: Any) -> None:
    """Put back the handler :func:`install` replaced and forget the recorded interrupt."""
    global _interrupted
    _interrupted = False
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


def interrupted() -> bool:
    """Whether SIGINT arrived since :func:`install` (even if its KeyboardInterrupt was swallowed)."""
    return _interrupted


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived since :func:`install` (a safe point to stop at)."""
    if _interrupted:
        raise KeyboardInterrupt
