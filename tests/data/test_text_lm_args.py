"""Tiny Shakespeare / word corpora refuse a split they do not have and bad window arguments (never a silent other
split or a raw TypeError)."""

from __future__ import annotations

import pytest

from spikeseq.data import text_lm
from spikeseq.errors import DataError


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "text" / "tinyshakespeare"
    d.mkdir(parents=True)
    (d / "input.txt").write_text("hello world, how are you? " * 5)
    return tmp_path


def test_unknown_split_is_refused_not_read_as_test(root):
    assert text_lm.tinyshakespeare(root, "test", seq_len=4).x.shape == (3, 4)
    with pytest.raises(DataError, match="not 'val'"):
        text_lm.tinyshakespeare(root, "val", seq_len=4)
    with pytest.raises(DataError, match="ptb has splits train, valid, test, not 'validation'"):
        text_lm.word_corpus("ptb", root, "validation")


@pytest.mark.parametrize("kw,msg", [({"max_chars": -5}, "max_chars must be an integer >= 1"),
                                     ({"seq_len": 2.5}, "seq_len must be an integer >= 1, got 2.5")])
def test_bad_window_arguments(root, kw, msg):
    with pytest.raises(DataError, match=msg):
        text_lm.tinyshakespeare(root, "train", **{"seq_len": 4, **kw})
