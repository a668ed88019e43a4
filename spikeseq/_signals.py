"""Ctrl-C that is never lost and never lands inside an import (standard library only).

Python turns SIGINT into ``KeyboardInterrupt`` at the next bytecode. Raised inside an import that a C extension is
running (torch's import calls back into Python), it can be swallowed (the command then runs on as if nothing had
happened) or, in pybind11 code, turn into ``std::terminate`` (the process aborts with SIGABRT). :func:`install`
puts a handler in place that records every interrupt and raises it only outside imports: a Ctrl-C that arrives
while a module is being imported is held until the import has finished, then delivered (a watcher thread re-sends
it), so Ctrl-C at any moment ends the command with exit code 130. :func:`check` re-raises a recorded interrupt at
safe points (after imports, before a run directory is created). The training loop installs its own handler while
it trains (finish the step, save, exit 130).
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

_interrupted = False
_held = threading.Event()  # an interrupt arrived inside an import and waits for it to end

#: how often the watcher looks whether the main thread's import has finished (seconds)
_WATCH_PERIOD = 0.02


def _in_import(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import: some frame under it belongs to importlib's bootstrap."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _deliver_after_import() -> None:
    """Watcher thread: wait until the main thread is outside any import, then re-send the held interrupt."""
    main_id = threading.main_thread().ident
    while _held.is_set():
        frame = sys._current_frames().get(main_id)
        if frame is None:  # the main thread has finished
            return
        if not _in_import(frame):
            _held.clear()  # should the handler find the main thread in another import by then, it holds it again
            _thread.interrupt_main(signal.SIGINT)
            return
        time.sleep(_WATCH_PERIOD)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    if _in_import(frame):
        if not _held.is_set():
            _held.set()
            threading.Thread(target=_deliver_after_import, name="spikeseq-sigint", daemon=True).start()
        return
    _held.clear()
    raise KeyboardInterrupt


def install() -> Any:
    """Install the recording SIGINT handler (main thread only); returns the previous handler for :func:`restore`."""
    global _interrupted
    _interrupted = False
    _held.clear()
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _handler)


def restore(previous: Any) -> None:
    """Put back the handler :func:`install` replaced and forget the recorded interrupt."""
    global _interrupted
    _interrupted = False
    _held.clear()
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


def interrupted() -> bool:
    """Whether SIGINT arrived since :func:`install` (even if its KeyboardInterrupt was swallowed or is still held)."""
    return _interrupted


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived since :func:`install` (a safe point to stop at)."""
    if _interrupted:
        _held.clear()
        raise KeyboardInterrupt
