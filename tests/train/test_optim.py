"""[train] optimisation keys: schedules equal torch's schedulers, decay groups, accumulation, bf16, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeseq.errors import ConfigError
from spikeseq.nn import LIF
from spikeseq.train import checkpoint, optim
from spikeseq.train.config import TrainConfig, from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir


def _lrs(t: TrainConfig, steps_per_epoch: int, opt_kind: str = "adam") -> tuple[list[float], list[float]]:
    p = nn.Parameter(torch.zeros(2, 2))
    groups = [{"params": [p], "lr": t.lr, "weight_decay": 0.0}]
    opt = optim.make_optimizer(groups, t)
    sched = optim.Schedule(opt, [optim.GroupSpec("default", t.scheduler, t.lr, 0.0)], t, steps_per_epoch)
    lrs, moms = [], []
    for s in range(t.epochs * steps_per_epoch):
        sched.apply(s)
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["betas"][0] if opt_kind == "adam" else opt.param_groups[0]["momentum"])
    return lrs, moms


def _torch_lrs(t: TrainConfig, steps_per_epoch: int, make, per_epoch: bool) -> tuple[list[float], list[float]]:
    p = nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.Adam([p], lr=t.lr)
    sched = make(opt)
    lrs, moms = [], []
    for s in range(t.epochs * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["betas"][0])
        opt.step()
        if not per_epoch:
            sched.step()
        elif (s + 1) % steps_per_epoch == 0:
            sched.step()
    return lrs, moms


def test_onecycle_equals_torch_onecyclelr_including_momentum():
    t = TrainConfig(epochs=4, lr=5e-3, scheduler="onecycle", pct_start=0.15)
    ours = _lrs(t, 7)
    ref = _torch_lrs(t, 7, lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=5e-3, total_steps=28,
                                                                        pct_start=0.15), per_epoch=False)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                                   rtol=1e-12, atol=0)
    assert ours[0][0] == pytest.approx(5e-3 / 25, rel=1e-12) and 0.99 * 5e-3 < max(ours[0]) <= 5e-3
    assert ours[1][0] == pytest.approx(0.95, rel=1e-12) and min(ours[1]) < 0.86  # beta1 cycles 0.95 -> 0.85


@pytest.mark.parametrize("kind", ["cosine", "step"])
def test_epoch_schedules_equal_torch(kind):
    t = TrainConfig(epochs=5, lr=0.1, scheduler=kind, step_size=2, gamma=0.5)
    make = {"cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5),
            "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)}[kind]
    ours, _ = _lrs(t, 3)
    ref, _ = _torch_lrs(t, 3, make, per_epoch=True)
    torch.testing.assert_close(torch.tensor(ours, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64),
                               rtol=1e-12, atol=1e-15)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.lif = LIF(3, tau_mem=0.01, learn="tau", learn_threshold=True)
        self.tau_syn = nn.Parameter(torch.full((3, 3), 0.02))  # named like a time constant: never decayed


def test_weight_decay_skips_biases_norms_time_constants_and_thresholds():
    net = _Net()
    t = TrainConfig(weight_decay=0.1)
    groups, specs = optim.param_groups(net, t)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    names = {n for n, p in net.named_parameters() if id(p) in decayed}
    assert names == {"fc.weight"}
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    groups_all, _ = optim.param_groups(net, TrainConfig(weight_decay=0.1, weight_decay_on="all"))
    assert [g["weight_decay"] for g in groups_all] == [0.1]


def test_model_groups_and_overrides():
    class Grouped(_Net):
        def param_groups(self):
            return {"time": [self.tau_syn]}

    t = TrainConfig(lr=0.01, groups={"time": {"lr": 0.5, "scheduler": "cosine"}})
    groups, specs = optim.param_groups(Grouped(), t)
    by_name = {g["name"]: g for g in groups}
    assert by_name["time"]["lr"] == 0.5 and by_name["default"]["lr"] == 0.01
    assert [s.scheduler for s in specs if s.name == "time"] == ["cosine"]
    with pytest.raises(ConfigError, match="has no parameter group 'weights'; its groups: default, time"):
        optim.param_groups(Grouped(), TrainConfig(groups={"weights": {"lr": 1.0}}))


def test_accumulation_gives_the_gradient_of_the_whole_window(tmp_path, tiny_data, tiny_raw):
    # 96 training samples: batch 16 x accumulate 2 takes the same optimizer steps as batch 32 (mean over 32), with
    # the last window of 32 samples split 16 + 16; float32 sums of two halves differ from one sum by rounding only.
    runs = {}
    for name, train in (("acc", {"batch_size": 16, "accumulate": 2}), ("big", {"batch_size": 32})):
        cfg = from_dict(tiny_raw(tiny_data, epochs=2, **train))
        run = RunDir.prepare(tmp_path / name, cfg)
        assert fit(cfg, run, quiet=True)["step"] == 6
        runs[name] = checkpoint.load(run.last)
    for k, v in runs["big"]["model"].items():
        torch.testing.assert_close(runs["acc"]["model"][k], v, rtol=0, atol=1e-5, msg=k)
    assert runs["acc"]["position"] == {"epoch": 2, "batch": 0, "step": 6}
    metrics = RunDir(tmp_path / "acc").read_metrics()
    assert [m["step"] for m in metrics] == [3, 6]


def test_bf16_autocast_trains_and_keeps_float32_state(tmp_path, tiny_data, tiny_raw):
    cfg = from_dict(tiny_raw(tiny_data, epochs=1, precision="bf16"))
    run = RunDir.prepare(tmp_path / "bf16", cfg)
    fit(cfg, run, quiet=True)
    ck = checkpoint.load(run.last)
    assert all(v.dtype == torch.float32 for v in ck["model"].values() if v.is_floating_point())
    ref = from_dict(tiny_raw(tiny_data, epochs=1))
    run32 = RunDir.prepare(tmp_path / "f32", ref)
    fit(ref, run32, quiet=True)
    w16, w32 = ck["model"], checkpoint.load(run32.last)["model"]
    diff = max(float((w16[k] - w32[k]).abs().max()) for k in w32)
    assert 0 < diff < 0.05  # bf16 matmuls change the run, but only by rounding-sized steps
    assert math.isfinite(run.read_metrics()[-1]["train_loss"])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the option does to a linear layer
        assert nn.Linear(4, 3)(torch.randn(2, 4)).dtype == torch.bfloat16


@pytest.mark.parametrize("key,value,message", [
    ("scheduler", "linear", "train.scheduler = 'linear' is not one of none, cosine, step, onecycle"),
    ("precision", "fp16", "train.precision = 'fp16' is not one of float32, bf16"),
    ("accumulate", 0, "train.accumulate must be >= 1, got 0"),
    ("pct_start", 1.5, "train.pct_start must be in"),
    ("grad_clip", -1.0, "train.grad_clip must be > 0"),
    ("weight_decay_on", "biases", "train.weight_decay_on = 'biases' is not one of weights, all"),
    ("eval_checkpoint", "first", "train.eval_checkpoint = 'first' is not one of best, last"),
    ("groups", {"delays": {"momentum": 0.1}}, "unknown key train.groups.delays.momentum"),
    ("groups", {"delays": {"scheduler": "x"}}, "train.groups.delays.scheduler = 'x' is not one of"),
    ("checkpoint_every", 0, "train.checkpoint_every must be >= 1"),
])
def test_bad_train_keys_name_the_key(tiny_data, tiny_raw, key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        from_dict(tiny_raw(tiny_data, **{key: value}))


def test_loop_equals_the_textbook_onecycle_loop(tmp_path, tiny_data, tiny_raw):
    """fit() with onecycle + clipping + last-step readout is, step for step, the loop of the retired
    examples/har_train.py (Adam, torch's OneCycleLR stepped per batch, clip_grad_norm_, CE on y[-1]): bitwise."""
    import torch.nn.functional as F

    from spikeseq.train.datasets import prepare
    from spikeseq.train.loop import build_model, epoch_order

    raw = tiny_raw(tiny_data, epochs=2, lr=5e-3, scheduler="onecycle", pct_start=0.15, grad_clip=1.0,
                   readout="last")
    raw["data"]["val_fraction"] = 0.0
    raw["model"] = {"name": "l2mu", "input_size": 4, "n_classes": 3, "hidden_size": 8, "memory_size": 4,
                    "order": 2, "theta": 4.0, "input_module": "direct", "readout": "membrane"}
    cfg = from_dict(raw)
    run = RunDir.prepare(tmp_path / "r", cfg)
    fit(cfg, run, quiet=True)
    ours = checkpoint.load(run.last)["model"]

    checkpoint.seed_everything(cfg.train.seed)
    data = prepare(cfg.data, cfg.train.seed)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    n, bsz = len(data.train), cfg.train.batch_size
    spe = math.ceil(n / bsz)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=2 * spe, pct_start=0.15)
    for epoch in range(2):
        order = epoch_order(n, cfg.train.seed, epoch)
        for b in range(spe):
            idx = order[b * bsz:(b + 1) * bsz]
            y, _ = model(data.train.x[idx].transpose(0, 1).contiguous())
            loss = F.cross_entropy(y[-1], data.train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
    ref = model.state_dict()
    for k, v in ref.items():
        assert torch.equal(ours[k], v), k
    assert any(not torch.equal(v, build_model(cfg.model).state_dict()[k]) for k, v in ref.items())
