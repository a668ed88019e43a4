"""Class 6: messages say what was wrong AND what a valid input looks like or which command fixes it."""

from __future__ import annotations

import numpy as np
import pytest

from spikeseq.cli import main
from spikeseq.data import nmnist, shd, uci_har
from spikeseq.errors import SpikeseqError
from tests.faults import _real


def _uci_split(tmp_path, n_y: int):
    rng = np.random.default_rng(0)
    sig = {f"{s}_{a}": rng.normal(size=(8, 128)) for s in uci_har.SIGNALS for a in "xyz"}
    uci_har.write_split(tmp_path, "train", signals=sig, y=np.arange(n_y) % 6 + 1, subject=np.ones(n_y))
    return tmp_path


def _hapt_mismatch(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path)
    gyro = root / "RawData" / "gyro_exp01_user01.txt"
    gyro.write_text("".join(gyro.read_text().splitlines(keepends=True)[:-1]))
    return root


CASES = {
    "shd junk": (lambda d, t: shd.read_shd((t / "junk.h5").write_bytes(b"not hdf5") and t / "junk.h5"),
                 r"junk\.h5: not a readable HDF5 file", r"an SHD/SSC file is HDF5 with spikes/times.*re-download"),
    "uci rows": (lambda d, t: uci_har.load_windows(_uci_split(t, 9), "train"),
                 r"has 8 rows but y_train\.txt has 9", r"one row per window.*restore the missing rows"),
    "hapt rows": (lambda d, t: __import__("spikeseq.data.hapt").data.hapt.load_windows(_hapt_mismatch(d, t), "all",
                                                                                        cache=False),
                  r"acc_exp01_user01\.txt has \d+ rows but .*gyro_exp01_user01\.txt has", r"restore both"),
    "nmnist missing": (lambda d, t: nmnist.read_events(t / "00001.bin"),
                       r"N-MNIST file not found: .*00001\.bin", r"spikeseq data fetch nmnist"),
    "nir junk": (lambda d, t: __import__("spikeseq.export.nir").export.nir.read_nir(
        (t / "m.nir").write_bytes(b"junk") and t / "m.nir"), r"m\.nir is not a readable HDF5 file",
        r"a NIR file is HDF5 with 'version' and 'node'"),
    "loihi junk": (lambda d, t: __import__("spikeseq.export.loihi").export.loihi.read_net(
        (t / "m.net").write_bytes(b"junk") and t / "m.net"), r"m\.net is not a readable HDF5 file",
        r"write it again with `spikeseq export RUN --target loihi`"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_message_says_what_failed_and_what_to_do(data_root, tmp_path, case):
    make, what, fix = CASES[case]
    with pytest.raises(SpikeseqError) as e:
        make(data_root, tmp_path)
    assert e.match(what) and e.match(fix), str(e.value)


@pytest.mark.parametrize(("argv", "what", "fix"), [
    (["train", "C", "--out", "FILE"], "is a file, not a directory", "give a new or empty directory"),
    (["train", "--resume", "--out", "FILE"], "is a file, not a run directory", "give the --out directory"),
    (["eval", "FILE"], "is a file, not a run directory", "give the --out directory of a `spikeseq train` run"),
    (["train", "--resume", "--out", "EMPTY"], "holds no run to resume", "drop --resume to start one"),
])
def test_cli_messages_say_what_to_do(tmp_path, capsys, monkeypatch, argv, what, fix):
    from tests.faults.conftest import write_tiny_config

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path)
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    names = {"C": str(cfg), "FILE": str(tmp_path / "file"), "EMPTY": str(tmp_path / "empty")}
    assert main([names.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert what in err and fix in err, err
