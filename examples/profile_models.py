"""Operation counts, sparsity and energy per inference of the delay SNN and L2MU, on every hardware table.

    nice -n 10 .venv/bin/python examples/profile_models.py --json runs/profile_models.json \
        --markdown runs/profile_models.md --png runs/profile_models

1. **Delay SNN** (:mod:`spikeseq.models.delay_snn`, learned delays) trained on the SHD-format temporal task of
   ``examples/delay_temporal_task.py`` (its default task and model sizes, ``--delay-epochs`` epochs, seed 0), then
   profiled on its test set. SHD itself is not available offline; with it, use ``examples/delay_shd.py``'s model.
2. **L2MU** (:mod:`spikeseq.models.l2mu`, the ``l2mu_hapt`` recipe of ``examples/har_train.py``) trained for
   ``--l2mu-epochs`` epochs on real HAPT windows (``$SPIKESEQ_DATA``), then profiled on the test windows.

Both are profiled with :func:`spikeseq.profile.count` (eval mode, integer delays) and priced with
:meth:`~spikeseq.profile.ProfileReport.energies` on every table in ``hardware/`` (memory terms on and off).
The printed Markdown table is the README's results row source.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spikeseq import profile


def profile_delay_snn(epochs: int, n_profile: int) -> dict:
    import delay_temporal_task as dtt
    from delay_common import load_frames, train

    from spikeseq.models.delay_snn import DelaySNNConfig

    args = dtt.parse(["--epochs", str(epochs)])
    with tempfile.TemporaryDirectory() as tmp:
        files = dtt.task_files(args, 0, Path(tmp))
        xtr, ytr = load_frames(files["train"], dt=args.dt, duration=args.duration)
        xte, yte = load_frames(files["test"], dt=args.dt, duration=args.duration)
    cfg = DelaySNNConfig(n_inputs=args.channels, n_outputs=args.classes, n_hidden=args.hidden, n_layers=args.layers,
                         max_delay=args.max_delay, delays="learned", dt=args.dt, dropout=args.dropout)
    r = train(cfg, {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}, epochs=epochs,
              batch_size=args.batch_size, seed=0, log=False)
    model = r["model"].eval()
    model.round_delays()
    x = model.pad(xte[:n_profile].transpose(0, 1).contiguous())
    rep = profile.count(model, x, name="delay_snn (temporal task)")
    return {"model": model, "report": rep, "test_acc": r["test_acc"], "train_s": r["train_s"],
            "data": f"SHD-format temporal task, {len(xte)} test samples, T={xte.shape[1]}+{cfg.pad_end} pad, "
                    f"{args.channels} channels"}


def profile_l2mu(epochs: int, n_profile: int, data_root: str | None) -> dict:
    import har_train

    from spikeseq.models import registry

    rec = har_train.RECIPES["l2mu_hapt"]
    xtr, ytr, xte, yte, classes = har_train.load("hapt", data_root)
    torch.manual_seed(0)
    model = registry.build("l2mu", input_size=xtr.shape[2], n_classes=len(classes), **rec["cfg"])
    opt = torch.optim.Adam(model.parameters(), lr=rec["lr"])
    steps = max(1, epochs * math.ceil(len(xtr) / rec["batch"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=rec["lr"], total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for i in har_train.batches(len(xtr), rec["batch"], gen):
            y, _ = model(xtr[i].transpose(0, 1).contiguous())
            loss = F.cross_entropy(y[-1], ytr[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
    train_s = time.perf_counter() - t0
    pred = har_train.predict(model, xte)
    acc = float((pred[-1] == yte).float().mean())
    x = model.pad(xte[:n_profile].transpose(0, 1).contiguous())
    rep = profile.count(model.eval(), x, name="l2mu (HAPT)")
    return {"model": model, "report": rep, "test_acc": acc, "train_s": train_s,
            "data": f"HAPT windows (UCI-HAR style), {len(xte)} test windows, T={xte.shape[1]}, 6 channels"}


def summary_row(name: str, res: dict, tables: list[str]) -> dict:
    rep = res["report"]
    t = rep.totals()
    energies = rep.energies(tables)
    return {"model": name, "data": res["data"], "test_acc": res["test_acc"], "train_s": res["train_s"],
            "params": sum(p.numel() for p in res["model"].parameters()), "samples_profiled": rep.n_samples,
            "time_steps": rep.time_steps, "dense_macs": t["dense_macs"], "eff_acs": t["eff_acs"],
            "eff_macs": t["eff_macs"], "neuron_updates": t["neuron_updates"], "spikes": t["spikes_out"],
            "activation_sparsity": rep.activation_sparsity(), "not_counted": rep.not_counted,
            "energy_pj": {k: {"memory_on": v["memory_on_pj"], "memory_off": v["memory_off_pj"]}
                          for k, v in energies.items()}}


def markdown(rows: list[dict], tables: list[str]) -> str:
    from spikeseq.profile.report import format_pj

    lines = ["| model | data | test acc | dense MACs | eff. ACs | eff. MACs | spikes | act. sparsity | "
             + " | ".join(f"{t} (mem on / off)" for t in tables) + " |",
             "|---|---|---:|---:|---:|---:|---:|---:|" + "---|" * len(tables)]
    for r in rows:
        cells = []
        for tb in tables:
            e = r["energy_pj"][tb]
            cells.append("n/a (no published figures)" if e["memory_on"] is None else
                         (format_pj(e["memory_on"]) if e["memory_on"] == e["memory_off"] else
                          f"{format_pj(e['memory_on'])} / {format_pj(e['memory_off'])}"))
        lines.append(f"| {r['model']} | {r['data']} | {100 * r['test_acc']:.1f}% | {r['dense_macs']:.4g} | "
                     f"{r['eff_acs']:.4g} | {r['eff_macs']:.4g} | {r['spikes']:.4g} | "
                     f"{r['activation_sparsity']:.4f} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Per inference (one sample, all time steps). Energy: counts x hardware/*.toml; memory on = "
                 "Lemaire-style SRAM accesses and addressing (arithmetic tables only; neuromorphic and CPU/GPU "
                 "figures already include memory).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay-epochs", type=int, default=20)
    p.add_argument("--l2mu-epochs", type=int, default=2)
    p.add_argument("--profile-samples", type=int, default=256)
    p.add_argument("--models", default="delay_snn,l2mu")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None)
    p.add_argument("--png", default=None, help="prefix of per-model figures (<prefix>_<model>.png)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from spikeseq import hardware

    tables = [t for t in hardware.available()]
    rows, reports = [], {}
    for name in args.models.split(","):
        t0 = time.perf_counter()
        if name == "delay_snn":
            res = profile_delay_snn(args.delay_epochs, args.profile_samples)
        elif name == "l2mu":
            res = profile_l2mu(args.l2mu_epochs, args.profile_samples, args.data_root)
        else:
            raise SystemExit(f"unknown model {name!r}")
        print(f"{name}: trained {res['train_s']:.0f} s, test accuracy {100 * res['test_acc']:.1f}%, "
              f"total {time.perf_counter() - t0:.0f} s", flush=True)
        print(res["report"].to_markdown(tables), flush=True)
        rows.append(summary_row(name, res, tables))
        reports[name] = res["report"].to_dict(tables, per_step=True)
        if args.png:
            from spikeseq.profile.plots import plot_profile

            Path(args.png).parent.mkdir(parents=True, exist_ok=True)
            plot_profile(res["report"], f"{args.png}_{name}.png")
    md = markdown(rows, tables)
    print(md)
    from spikeseq.profile.report import atomic_write

    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.markdown, lambda tmp: Path(tmp).write_text(md))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"summary": rows, "reports": reports, "args": vars(args)}, indent=1, default=float)
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
