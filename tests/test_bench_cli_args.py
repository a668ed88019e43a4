"""``spikeseq bench``: bad counts are refused while parsing (they raised KeyError / ZeroDivisionError /
StatisticsError / RuntimeError tracebacks), and an unwritable ``--json`` path before the benchmark runs."""

from __future__ import annotations

import pytest

from spikeseq.cli import main


@pytest.mark.parametrize("argv,option", [
    (["bench", "generation", "--model", "rwkv4", "--tokens", "-5"], "--tokens"),
    (["bench", "generation", "--model", "rwkv4", "--block", "0"], "--block"),
    (["bench", "hlop", "--reps", "-1"], "--reps"),
    (["bench", "hlop", "--threads", "-1"], "--threads"),
    (["bench", "target", "--reps", "0", "x.toml"], "--reps"),
    (["bench", "spmm", "--threads", "-2"], "--threads"),
])
def test_bad_counts_are_refused_by_the_parser(argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument {option}: must be an integer" in capsys.readouterr().err


def test_unwritable_json_is_refused_before_the_benchmark(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    # would time the delay layers for a while if the path were only checked at the end
    assert main(["bench", "delays", "--json", str(blocker / "out.json")]) == 2
    err = capsys.readouterr()
    assert "afile is a file, not a directory" in err.err and "training step" not in err.out
    assert main(["bench", "delays", "--json", str(tmp_path)]) == 2
    assert "it is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no probe file left behind
