"""Class 7: every refused command leaves the file tree exactly as it was (every file's bytes, every folder,
hidden temporaries included), with exit code 2 and one readable line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spikeseq.cli import main
from tests.faults.conftest import tree_digest


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def _setup(w: Path) -> dict[str, Callable[[], None]]:
    run = w / "run"
    return {
        "none": lambda: None,
        "file": lambda: (w / "afile").write_text("x"),
        "nonempty": lambda: ((w / "other").mkdir(), (w / "other" / "keep.txt").write_text("mine")),
        "empty": lambda: (w / "empty").mkdir(),
        "corrupt run.json": lambda: (run / "run.json").write_text("{"),
        "corrupt config.json": lambda: (run / "config.json").write_text('{"model": '),
        "truncated last.pt": lambda: _truncate(run / "checkpoints" / "last.pt"),
        "truncated best.pt": lambda: _truncate(run / "checkpoints" / "best.pt"),
        "export is a file": lambda: ((run / "export" / "nir.json").unlink(), (run / "export" / "nir.md").unlink(),
                                     (run / "export" / "model.nir").unlink(), (run / "export").rmdir(),
                                     (run / "export").write_text("x")),
        "stale temp": lambda: (run / "checkpoints" / ".last.pt.abcd1234.tmp").write_bytes(b"half"),
    }


REFUSED = [
    ("none", ["train", "C", "--out", "RUN"]),
    ("file", ["train", "C", "--out", "W/afile"]),
    ("nonempty", ["train", "C", "--out", "W/other"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "train.lr=nan"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "train.lr=inf"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "train.threads=0"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "train.epochs=0"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "train.batch_size=-8"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "model.v_th=0"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "model.dt=-0.01"]),
    ("none", ["train", "C", "--out", "W/new", "--set", "data.val_fraction=1.5"]),
    ("none", ["train", "C", "--out", "W/new", "--nproc", "0"]),
    ("none", ["train", "--resume", "--out", "RUN", "--set", "train.lr=0.5"]),
    ("empty", ["train", "--resume", "--out", "W/empty"]),
    ("file", ["train", "--resume", "--out", "W/afile"]),
    ("corrupt run.json", ["train", "--resume", "--out", "RUN"]),
    ("truncated last.pt", ["train", "--resume", "--out", "RUN"]),
    ("stale temp", ["train", "--resume", "--out", "RUN", "--set", "train.lr=nan"]),
    ("corrupt run.json", ["eval", "RUN"]),
    ("corrupt config.json", ["eval", "RUN"]),
    ("truncated best.pt", ["eval", "RUN"]),
    ("none", ["eval", "W/missing"]),
    ("file", ["eval", "W/afile"]),
    ("none", ["export", "RUN", "--samples", "-3"]),
    ("none", ["export", "RUN", "--samples", "0"]),
    ("none", ["export", "RUN", "--target", "bogus"]),
    ("export is a file", ["export", "RUN", "--target", "nir"]),
    ("truncated best.pt", ["export", "RUN", "--target", "nir"]),
    ("corrupt run.json", ["export", "RUN", "--target", "nir"]),
    ("none", ["profile", "RUN", "--samples", "0"]),
    ("none", ["profile", "RUN", "--tables", "no_such_chip"]),
    ("corrupt config.json", ["profile", "RUN"]),
    ("corrupt run.json", ["report", "RUN"]),
    ("file", ["report", "RUN", "--out", "W/afile"]),
]


@pytest.mark.parametrize(("state", "argv"), REFUSED, ids=[f"{s}: {' '.join(a)}" for s, a in REFUSED])
def test_refused_command_changes_nothing(workdir, capsys, state, argv):
    _setup(workdir)[state]()
    names = {"C": str(workdir / "c.toml"), "RUN": str(workdir / "run")}
    argv = [names.get(a, a.replace("W/", f"{workdir}/")) for a in argv]
    before = tree_digest(workdir)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse refuses a bad option value while parsing
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "error" in err
    assert tree_digest(workdir) == before, err
