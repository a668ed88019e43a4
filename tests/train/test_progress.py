"""spikeseq.progress: bars only on a terminal, SPIKESEQ_PROGRESS overrides."""

from __future__ import annotations

import io
import sys

from spikeseq import progress as pg


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_not_a_tty(monkeypatch):
    monkeypatch.delenv("SPIKESEQ_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    items = [1, 2, 3]
    assert pg.enabled() is False
    assert pg.progress(items, total=3) is items  # the iterable itself: no bar, no output


def test_bar_on_a_tty_and_overrides(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.delenv("SPIKESEQ_PROGRESS", raising=False)
    assert pg.enabled() is True
    assert list(pg.progress(range(4), total=4, desc="work")) == [0, 1, 2, 3]
    assert tty.getvalue().startswith("\rwork:   0%|") and "0/4" in tty.getvalue()  # a bar was drawn
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    assert pg.enabled() is False
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "1")
    assert pg.enabled() is True
