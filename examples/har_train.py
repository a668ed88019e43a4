"""Train and evaluate the LMU family (and baselines) on real HAR data; write a JSON report.

Recipes (the exact configurations behind the reported numbers; see RECIPES below):

    nice -n 10 .venv/bin/python examples/har_train.py --recipe l2mu_hapt --seed 0 --json runs/l2mu_hapt_s0.json
    nice -n 10 .venv/bin/python examples/har_train.py --recipe spiking_lmuformer_hapt --seed 0 --json ...
    nice -n 10 .venv/bin/python examples/har_train.py --recipe gru_hapt --seed 0 --json ...
    nice -n 10 .venv/bin/python examples/har_train.py --recipe l2mu_basicmotions --seed 0 --json ...

Data: ``$SPIKESEQ_DATA`` (default ``../shared/data``). HAPT: UCI-HAR-style 128-sample windows (stride 64) of
activities 1-6, 6 channels, UCI's subject split; BasicMotions: the UEA train/test files; WISDM (watch,
hand-oriented activities) when its files and loader are present. Inputs are normalised per channel with training
statistics. Models take time-first ``[T, B, C]`` and return per-step readouts ``[T, B, classes]``; the loss and
the reported accuracy use the last step, and the streaming curve reports the accuracy of ``y[t]`` after a
fraction of the window has been seen.

Activity: the fraction of neuron-steps with a spike per spiking population, the activation sparsity
(1 - spikes / neuron-steps over all spiking populations), and per-sample synaptic operations: accumulates (AC,
one per spike per outgoing synapse) and multiply-accumulates (MAC, real-valued inputs such as the raw sensor
values and the LMU memory recurrence). Counted here from the models' spikes and layer sizes (the profiler of
``spikeseq.profile`` is used instead when it provides ``count``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.models import registry

RECIPES: dict[str, dict] = {
    "l2mu_hapt": dict(
        model="l2mu", dataset="hapt", epochs=12, lr=5e-3, batch=64, weight_decay=0.0,
        cfg=dict(order=4, theta=16.0, hidden_size=160, memory_size=64, neuron="lif", input_module="direct",
                 readout="membrane", beta_u=0.8, v_th_u=0.5, beta_m=0.35, v_th_m=0.2, beta_h=0.8, v_th_h=0.5)),
    "spiking_lmuformer_hapt": dict(
        model="spiking_lmuformer", dataset="hapt", epochs=10, lr=2e-3, batch=64, weight_decay=0.0,
        cfg=dict(dim=48, order=32, theta=128.0, n_u=1)),
    "lmuformer_hapt": dict(
        model="lmuformer", dataset="hapt", epochs=10, lr=2e-3, batch=64, weight_decay=0.0,
        cfg=dict(dim=48, order=32, theta=128.0, n_u=1)),
    "gru_hapt": dict(model="gru_baseline", dataset="hapt", epochs=20, lr=2e-3, batch=64, weight_decay=0.0,
                     cfg=dict(hidden_size=128)),
    "lmu_hapt": dict(model="lmu_baseline", dataset="hapt", epochs=20, lr=2e-3, batch=64, weight_decay=0.0,
                     cfg=dict(hidden_size=128, order=32, theta=128.0, n_u=4)),
    "l2mu_basicmotions": dict(  # spiking input population: with raw currents into e_x/W_x, 90 / 95 % (2 seeds)
        model="l2mu", dataset="basicmotions", epochs=60, lr=5e-3, batch=8, weight_decay=0.0,
        cfg=dict(order=4, theta=16.0, hidden_size=160, memory_size=64, neuron="lif", input_module="lif",
                 input_pop_size=64, beta_in=0.8, v_th_in=0.5, readout="membrane", beta_u=0.8, v_th_u=0.5,
                 beta_m=0.35, v_th_m=0.2, beta_h=0.8, v_th_h=0.5)),
    "spiking_lmuformer_basicmotions": dict(
        model="spiking_lmuformer", dataset="basicmotions", epochs=60, lr=2e-3, batch=8, weight_decay=0.0,
        cfg=dict(dim=48, order=32, theta=100.0, n_u=1)),
    # WISDM 2019 watch (hand-oriented activities): runs only where the raw watch files are present
    "l2mu_wisdm": dict(
        model="l2mu", dataset="wisdm", epochs=12, lr=5e-3, batch=64, weight_decay=0.0,
        cfg=dict(order=4, theta=16.0, hidden_size=160, memory_size=64, neuron="lif", input_module="direct",
                 readout="membrane", beta_u=0.8, v_th_u=0.5, beta_m=0.35, v_th_m=0.2, beta_h=0.8, v_th_h=0.5)),
    "spiking_lmuformer_wisdm": dict(
        model="spiking_lmuformer", dataset="wisdm", epochs=10, lr=2e-3, batch=64, weight_decay=0.0,
        cfg=dict(dim=48, order=32, theta=40.0, n_u=1)),
    "gru_basicmotions": dict(model="gru_baseline", dataset="basicmotions", epochs=60, lr=2e-3, batch=8,
                             weight_decay=0.0, cfg=dict(hidden_size=128)),
}


def load(dataset: str, root: str | None):
    """Windows from :mod:`spikeseq.data.har`, normalised per channel with training statistics."""
    from spikeseq.data import har
    from spikeseq.errors import DataError

    if dataset == "hapt":
        tr, te = har.hapt_windows(root, split="train"), har.hapt_windows(root, split="test")
    elif dataset == "basicmotions":
        tr, te = har.basicmotions(root, split="train"), har.basicmotions(root, split="test")
    elif dataset == "wisdm":
        try:  # WISDM 2019 watch, hand-oriented activities; only when the raw files are present
            tr, te = har.wisdm2019(root, split="train"), har.wisdm2019(root, split="test")
        except DataError as e:
            raise SystemExit(f"WISDM skipped: {e}") from None
    else:
        raise SystemExit(f"unknown dataset {dataset!r}")
    norm = har.Normalizer.fit(tr.x)
    return (norm.apply(tr.x).float().contiguous(), tr.y.long(), norm.apply(te.x).float().contiguous(), te.y.long(),
            list(tr.classes))


def batches(n: int, bs: int, gen: torch.Generator | None):
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, bs):
        yield idx[i:i + bs]


@torch.no_grad()
def predict(model, x, bs=256):
    model.eval()
    out = []
    for i in batches(len(x), bs, None):
        y, _ = model(x[i].transpose(0, 1).contiguous())
        out.append(y.argmax(-1))  # [T, b]
    return torch.cat(out, dim=1)  # [T, N]


# --- activity and synaptic operations -------------------------------------------------------------------------

def _is_binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


@torch.no_grad()
def activity(model, x, bs=256) -> dict:
    """Firing rates per spiking population and per-sample AC/MAC counts on ``x`` (eval mode)."""
    from spikeseq.models.l2mu import L2MU
    from spikeseq.models.lmuformer import CausalConv1d
    from spikeseq.nn import LIF, LMU, CubaLIF

    model.eval()
    n, t_len = len(x), x.shape[1]
    pops: dict[str, list[float]] = {}
    ops = {"ac": 0.0, "mac": 0.0}
    if isinstance(model, L2MU):
        fan = model.fanout()
        for i in batches(n, bs, None):
            _, _, st = model.forward_with_spike_counts(x[i].transpose(0, 1).contiguous())
            for k, (s, c) in st.items():
                p = pops.setdefault(k, [0.0, 0.0])
                p[0] += s
                p[1] += c
                ops["ac"] += s * fan[k]
        if model.input_module == "lif":  # real-valued sensor currents into the input population
            ops["mac"] += n * t_len * model.input_size * model.w_in.out_features
        else:  # raw values straight into e_x and W_x
            ops["mac"] += n * t_len * model.input_size * (model.memory_size + model.hidden_size)
    else:
        hooks = []
        names = {m: name for name, m in model.named_modules()}

        def on_lif(mod, inp, out):
            p = pops.setdefault(names[mod], [0.0, 0.0])
            p[0] += float(out[0].sum())
            p[1] += out[0].numel()

        def on_syn(fan_out):
            def hook(mod, inp, out):
                xin = inp[0]
                if _is_binary(xin):
                    ops["ac"] += float(xin.sum()) * fan_out(mod)
                else:
                    ops["mac"] += xin.numel() * fan_out(mod)
            return hook

        for m in model.modules():
            if isinstance(m, (LIF, CubaLIF)):
                hooks.append(m.register_forward_hook(on_lif))
            elif isinstance(m, nn.Linear):
                hooks.append(m.register_forward_hook(on_syn(lambda mod: mod.out_features)))
            elif isinstance(m, CausalConv1d):
                hooks.append(m.register_forward_hook(on_syn(lambda mod: mod.conv.out_channels * mod.k)))
            elif isinstance(m, nn.GRU):
                hooks.append(m.register_forward_hook(
                    lambda mod, inp, out: ops.__setitem__("mac", ops["mac"] + inp[0].shape[0] * inp[0].shape[1]
                                                          * 3 * mod.hidden_size * (mod.input_size + mod.hidden_size))))
            if isinstance(m, LMU):  # memory recurrence A_bar m (d x d per channel) + B_bar u, real valued
                d = m.memory.order
                hooks.append(m.register_forward_hook(
                    lambda mod, inp, out, d=d: ops.__setitem__(
                        "mac", ops["mac"] + inp[0].shape[0] * inp[0].shape[1] * mod.n_u * (d * d + d))))
        for i in batches(n, bs, None):
            model(x[i].transpose(0, 1).contiguous())
        for h in hooks:
            h.remove()
    total_s = sum(p[0] for p in pops.values())
    total_n = sum(p[1] for p in pops.values())
    return {
        "firing_rate": {k: p[0] / p[1] for k, p in pops.items()},
        "activation_sparsity": (1 - total_s / total_n) if total_n else None,
        "ac_per_sample": ops["ac"] / n,
        "mac_per_sample": ops["mac"] / n,
        "counted_by": "examples/har_train.py (spike counts x fan-out)",
    }


def profile_counts(model, x):
    """``spikeseq.profile.count`` of the model on up to 64 windows; a layer the profiler cannot count raises."""
    from spikeseq.profile import count

    rep = count(model, x[:64].transpose(0, 1).contiguous())
    return {"totals_per_sample": rep.totals(), "not_counted": [str(u) for u in rep.not_counted],
            "n_samples": rep.n_samples}


# --- main ---------------------------------------------------------------------------------------------------------

def parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", choices=sorted(RECIPES))
    ap.add_argument("--model")
    ap.add_argument("--dataset")
    ap.add_argument("--cfg", nargs="*", default=[], help="model overrides key=value")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is fastest for the stepped L2MU on a shared 2-core machine")
    ap.add_argument("--limit-train", type=int, default=0, help="use only the first N training windows (smoke)")
    ap.add_argument("--data-root", default=None, help="dataset folder (default: found under $SPIKESEQ_DATA)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    r = dict(RECIPES[args.recipe]) if args.recipe else dict(model=None, dataset=None, epochs=10, lr=2e-3, batch=64,
                                                            weight_decay=0.0, cfg={})
    r["cfg"] = dict(r["cfg"])
    for k in ("model", "dataset", "epochs", "lr", "batch", "weight_decay"):
        v = getattr(args, k)
        if v is not None:
            r[k] = v
    for kv in args.cfg:
        k, v = kv.split("=", 1)
        r["cfg"][k] = parse_value(v)
    if not r["model"] or not r["dataset"]:
        ap.error("give --recipe or both --model and --dataset")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    xtr, ytr, xte, yte, classes = load(r["dataset"], args.data_root)
    if args.limit_train:
        xtr, ytr = xtr[:args.limit_train], ytr[:args.limit_train]
    model = registry.build(r["model"], input_size=xtr.shape[2], n_classes=len(classes), **r["cfg"])
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    steps_per_epoch = math.ceil(len(xtr) / r["batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=r["epochs"] * steps_per_epoch,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    hist = []
    print(f"{r['model']} on {r['dataset']}: {len(xtr)} train / {len(xte)} test windows, {n_params} parameters",
          flush=True)
    for ep in range(r["epochs"]):
        model.train()
        t0, tot, correct, seen = time.perf_counter(), 0.0, 0, 0
        for i in batches(len(xtr), r["batch"], gen):
            y, _ = model(xtr[i].transpose(0, 1).contiguous())
            loss = F.cross_entropy(y[-1], ytr[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(i)
            correct += int((y[-1].argmax(-1) == ytr[i]).sum())
            seen += len(i)
        train_s = time.perf_counter() - t0
        pred = predict(model, xte)
        acc = float((pred[-1] == yte).float().mean())
        hist.append(dict(epoch=ep + 1, train_loss=tot / seen, train_acc=correct / seen, test_acc=acc,
                         train_seconds=train_s))
        print(f"epoch {ep + 1:3d}  loss {tot / seen:.4f}  train {correct / seen:.4f}  test {acc:.4f}  "
              f"({train_s:.1f} s)", flush=True)

    pred = predict(model, xte)
    t_len = xte.shape[1]
    fracs = (0.1, 0.25, 0.5, 0.75, 1.0)
    stream = {str(f): float((pred[max(1, round(f * t_len)) - 1] == yte).float().mean()) for f in fracs}
    conf = torch.zeros(len(classes), len(classes), dtype=torch.int64)
    for a, b in zip(yte.tolist(), pred[-1].tolist()):
        conf[a, b] += 1
    act = activity(model, xte)
    report = dict(
        recipe=args.recipe, model=r["model"], dataset=r["dataset"], cfg=r["cfg"], seed=args.seed,
        epochs=r["epochs"], lr=r["lr"], batch=r["batch"], weight_decay=r["weight_decay"], params=n_params,
        n_train=len(xtr), n_test=len(xte), classes=classes,
        test_acc=hist[-1]["test_acc"], final_train_acc=hist[-1]["train_acc"],
        mean_epoch_seconds=float(np.mean([h["train_seconds"] for h in hist])), threads=args.threads,
        streaming_acc=stream, confusion=conf.tolist(),
        per_class_acc={c: float(conf[k, k] / max(1, conf[k].sum())) for k, c in enumerate(classes)},
        activity=act, profiler=profile_counts(model, xte), history=hist,
         command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        note="epoch times measured on a shared 2-core CPU with other jobs running: pessimistic",
    )
    print(json.dumps({k: report[k] for k in ("test_acc", "streaming_acc", "mean_epoch_seconds", "params")}))
    print(json.dumps(act))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(out)
    return report


if __name__ == "__main__":
    main()
