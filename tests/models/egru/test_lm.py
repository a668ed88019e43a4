"""EGRU family: registry, language models, pruning schedule, activity penalty, text readers, LM task."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.data import registry as data_registry
from spikeseq.data.text_lm import tinyshakespeare, windows, word_corpus
from spikeseq.errors import DataError, ParameterError, ShapeError
from spikeseq.models import registry
from spikeseq.models.egru import EGRULM, RNNLM, Pruner, PruneSchedule, magnitude_mask, to_csr
from spikeseq.models.egru.modules import EGRUClassifier
from spikeseq.models.egru.prune import erdos_renyi_sparsities, global_magnitude_masks
from spikeseq.train.tasks.language_modelling import lm_batch


def test_family_registered_with_its_models_and_tasks():
    fam = registry.families()["egru"]
    assert fam.tasks == ("language_modelling", "classification", "continual")
    assert {"egru_lm", "gru_lm", "lstm_lm", "egru_classifier", "rnn_classifier"} <= set(fam.builders)
    m = registry.build("gru_lm", vocab=10, hidden=8, embed=4)
    assert isinstance(m, RNNLM) and m.rnn.hidden_size == 8


def test_lm_shapes_and_bad_ids():
    m = EGRULM(11, embed=4, hidden=6, layers=2, seed=0)
    logits, st = m(torch.randint(0, 11, (7, 3)).float())
    assert logits.shape == (7, 3, 11) and st.c.shape == (2, 3, 6)
    with pytest.raises(ShapeError, match=r"token ids must lie in \[0, 11\)"):
        m(torch.full((2, 1), 11.0))
    with pytest.raises(ShapeError, match=r"\[T, B\]"):
        m(torch.zeros(2, 1, 1))
    for cell in ("gru", "lstm"):
        y, _ = RNNLM(11, cell=cell, embed=4, hidden=6)(torch.zeros(5, 2))
        assert y.shape == (5, 2, 11)


def test_prune_schedule_is_cubic_and_level_one_is_refused():
    s = PruneSchedule(0.95, start=10, end=110, every=10)
    assert s.at(5) == 0.0 and s.at(110) == pytest.approx(0.95) and s.at(500) == pytest.approx(0.95)
    assert s.at(60) == pytest.approx(0.95 * (1 - 0.5 ** 3))          # Zhu & Gupta 2017, eq. 1
    with pytest.raises(ParameterError, match=r"1\.0 would remove every weight"):
        PruneSchedule(1.0)
    with pytest.raises(ParameterError, match="start < end"):
        PruneSchedule(0.5, start=5, end=5)


def test_magnitude_mask_keeps_the_largest_entries():
    w = torch.tensor([[0.1, -3.0, 0.5], [2.0, -0.2, 0.05]])
    m = magnitude_mask(w, 0.5)
    assert m.tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]


def test_pruner_reaches_the_target_and_keeps_weights_zero():
    m = EGRULM(9, embed=4, hidden=8, seed=0, prune=dict(sparsity=0.9, start=0, end=4, every=1))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(6):
        logits, _ = m(torch.randint(0, 9, (5, 2)).float())
        opt.zero_grad()
        logits.square().mean().backward()
        opt.step()
        m.train_step_end()
    for name, s in m.weight_sparsity().items():
        w = dict(m.rnn.named_parameters())[name]
        assert s == pytest.approx(math.floor(0.9 * w.numel() + 1e-9) / w.numel()), name
    csr = to_csr(m.rnn.weight_hh_l0)
    assert csr.layout == torch.sparse_csr and torch.equal(csr.to_dense(), m.rnn.weight_hh_l0.detach())
    # the masks are buffers: a checkpoint restores them
    m2 = EGRULM(9, embed=4, hidden=8, seed=1, prune=dict(sparsity=0.9, start=0, end=4, every=1))
    m2.load_state_dict(m.state_dict())
    assert torch.equal(m2.pruner.mask("rnn.weight_hh_l0"), m.pruner.mask("rnn.weight_hh_l0"))
    assert isinstance(m.pruner, Pruner)


def test_global_masks_rank_all_matrices_together():
    a = torch.tensor([[0.1, -3.0], [2.0, 0.05]])
    b = torch.tensor([0.5, -0.2, 4.0, 0.3])
    ma, mb = global_magnitude_masks([a, b], 0.5)      # 4 of 8 dropped: 0.05, 0.1, -0.2, 0.3
    assert ma.tolist() == [[0.0, 1.0], [1.0, 0.0]] and mb.tolist() == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(ParameterError, match="scope must be one of"):
        PruneSchedule(0.5, scope="layer")


def test_global_pruner_reaches_the_total_sparsity_with_matrices_at_their_own_level():
    m = EGRULM(9, embed=4, hidden=8, seed=0, prune=dict(sparsity=0.9, start=0, end=4, every=1, scope="global"))
    with torch.no_grad():
        m.rnn.weight_ih_l0.mul_(10.0)            # the input matrix dominates the pooled ranking
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    for _ in range(6):
        logits, _ = m(torch.randint(0, 9, (5, 2)).float())
        opt.zero_grad()
        logits.square().mean().backward()
        opt.step()
        m.train_step_end()
    weights = [w for n, w in m.rnn.named_parameters() if n.startswith("weight")]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == math.floor(0.9 * total + 1e-9)
    sp = m.weight_sparsity()
    assert sp["weight_ih_l0"] < 0.9 < sp["weight_hh_l0"]


def test_activity_penalty_adds_the_gradient_of_strength_times_mean_events():
    x = torch.randint(0, 9, (6, 2)).float()
    grads = []
    for strength, explicit in ((2.0, False), (0.0, True)):
        torch.manual_seed(0)
        m = EGRULM(9, embed=4, hidden=5, seed=3, activity=strength, backend="torch")
        logits, _, ev = m.forward_events(x)
        loss = logits.sum() + (2.0 * ev.mean() if explicit else 0.0)
        loss.backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_activity_rate_budget_switches_the_penalty_on_above_the_rate_only():
    # activity_rate r: the gradient of strength * mean(e) while the batch's event rate exceeds r, none below it
    x = torch.randint(0, 9, (6, 2), generator=torch.Generator().manual_seed(1)).float()

    def grads(**kw):
        torch.manual_seed(0)
        m = EGRULM(9, embed=4, hidden=5, seed=3, backend="torch", thr_mean=0.05, **kw)
        logits, _, ev = m.forward_events(x)
        logits.sum().backward()
        return float(ev.mean()), [p.grad.clone() for p in m.parameters()]

    rate, plain = grads()
    assert 0.0 < rate < 1.0
    _, below = grads(activity=2.0, activity_rate=min(0.999, rate + 0.01))   # rate under the budget: no penalty
    _, above = grads(activity=2.0, activity_rate=rate / 2)                  # over the budget: the full penalty
    _, full = grads(activity=2.0)
    for a, b, c, d in zip(plain, below, above, full, strict=True):
        torch.testing.assert_close(b, a)
        torch.testing.assert_close(c, d)
    assert any(not torch.allclose(a, d) for a, d in zip(plain, full, strict=True))
    with pytest.raises(ParameterError, match="activity_rate"):
        EGRULM(9, activity=1.0, activity_rate=1.0)


def test_classifier_shapes():
    m = EGRUClassifier(12, 4, hidden=6, seed=0)
    y, _ = m(torch.rand(5, 3, 3, 4))
    assert y.shape == (5, 3, 4)
    with pytest.raises(ShapeError, match="12 features"):
        m(torch.rand(5, 3, 5))
    # an empty batch (as torch.nn.GRU allows): empty logits, for the EGRU and its GRU baseline alike
    for model in (m, registry.build("rnn_classifier", input_size=12, n_classes=4, hidden=6)):
        y, _ = model(torch.rand(5, 0, 3, 4))
        assert y.shape == (5, 0, 4)


def test_text_readers_on_fixtures(tmp_path):
    base = tmp_path / "text" / "tinyshakespeare"
    base.mkdir(parents=True)
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 3
    (base / "input.txt").write_text(text)
    tr = tinyshakespeare(tmp_path, "train", seq_len=10)
    te = tinyshakespeare(tmp_path, "test", seq_len=5)
    cut = int(0.9 * len(text))
    vocab = sorted(set(text))
    assert tr.classes == vocab and tr.x.shape == ((cut - 1) // 10, 10)
    assert "".join(vocab[int(i)] for i in tr.x[0]) == text[:10]
    assert "".join(vocab[int(i)] for i in tr.y[0]) == text[1:11]
    assert "".join(vocab[int(i)] for i in te.x[0]) == text[cut:cut + 5]
    # word level: <eos> per line, vocabulary of the training split
    wb = tmp_path / "text" / "ptb"
    wb.mkdir(parents=True)
    (wb / "ptb.train.txt").write_text(" the cat sat \n the dog \n")
    (wb / "ptb.valid.txt").write_text(" the cat \n")
    (wb / "ptb.test.txt").write_text(" a bird \n")
    w = word_corpus("ptb", tmp_path, "train", seq_len=3)
    assert w.classes == ["<eos>", "cat", "dog", "sat", "the"]
    assert w.x[0].tolist() == [4.0, 1.0, 3.0] and w.y[0].tolist() == [1, 3, 0]
    assert data_registry.load("ptb", "valid", tmp_path, seq_len=2).x.tolist() == [[4.0, 1.0]]
    with pytest.raises(DataError, match="not in the training vocabulary"):
        word_corpus("ptb", tmp_path, "test", seq_len=1)
    with pytest.raises(DataError, match="file not found"):
        word_corpus("wikitext2", tmp_path, "train")
    with pytest.raises(DataError, match="too short"):
        windows(torch.arange(3), 5, [])


def test_lm_batch_uniform_logits_give_log2_vocab_bits():
    v, t, b = 8, 4, 3
    out = (torch.zeros(t, b, v), None)
    y = torch.randint(0, v, (b, t))
    res = lm_batch(out, y, None)
    assert res.count == t * b
    assert float(res.loss_sum) / res.count / math.log(2) == pytest.approx(3.0)   # log2(8) bits per token


def test_erdos_renyi_densities_scale_with_fan_in_plus_fan_out_and_sum_to_the_target():
    # by hand: densities c (768 + 64) / (768 * 64) and c (768 + 256) / (768 * 256), total 5 % of 245,760
    s_ih, s_hh = erdos_renyi_sparsities([(768, 64), (768, 256)], 0.95)
    assert (1 - s_ih) / (1 - s_hh) == pytest.approx((832 / 49152) / (1024 / 196608))
    assert (1 - s_ih) * 49152 + (1 - s_hh) * 196608 == pytest.approx(0.05 * 245760)
    # a matrix whose share would exceed density 1 stays dense and the other takes the rest
    assert erdos_renyi_sparsities([(10, 2), (100, 100)], 0.5) == pytest.approx([0.0, 0.501])
    m = EGRULM(9, embed=4, hidden=8, seed=0, prune=dict(sparsity=0.8, start=0, end=2, every=1, scope="erdos_renyi"))
    for _ in range(3):
        m.train_step_end()
    want = erdos_renyi_sparsities([(24, 4), (24, 8)], 0.8)
    got = m.weight_sparsity()
    assert [got["weight_ih_l0"], got["weight_hh_l0"]] == pytest.approx(
        [math.floor(s * n + 1e-9) / n for s, n in zip(want, (96, 192), strict=True)])
