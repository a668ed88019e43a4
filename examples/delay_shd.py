"""Train the delay paper's recipe (``spikeseq.models.delay_snn``) on SHD, SSC, or the SHD-format temporal task.

    python examples/delay_shd.py --dataset shd  [--root DIR]   # needs shd_train.h5 / shd_test.h5
    python examples/delay_shd.py --dataset ssc  [--root DIR]   # needs ssc_train.h5 / ssc_test.h5
    python examples/delay_shd.py --dataset temporal            # generated here, always available

Real data is read from ``--root`` (default: the dataset folder under the spikeseq data root, see
``spikeseq data info``); inputs are 700 channels merged by 5 into 140 and binned to 10 ms, as in the paper. The
full recipe (150 epochs for SHD, 60 for SSC, batch 256/128) is the default and wants a GPU; ``--epochs`` and
``--limit`` make a quick run. After training the delays are rounded and the test accuracy is reported with integer
delays (``forward_integer``), the semantics an exported model has.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delay_common import load_frames, train, write_json

from spikeseq.data import temporal_task
from spikeseq.data.shd import split_path
from spikeseq.models.delay_snn import VARIANTS, DelaySNNConfig


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("shd", "ssc", "temporal"), default="shd")
    p.add_argument("--root", default=None, help="folder with <dataset>_train.h5 and <dataset>_test.h5")
    p.add_argument("--delays", choices=VARIANTS, default="learned")
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's (150 SHD, 60 SSC)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the paper's (256 SHD, 128 SSC)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N train and test samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = None
    if args.dataset == "temporal":
        tmp = tempfile.TemporaryDirectory()
        kw = dict(n_classes=20, n_channels=700, duration=1.0, n_groups=4, group_gap=0.1, group_spread=0.02,
                  seed=args.seed)
        files = {s: temporal_task.generate(Path(tmp.name) / f"temporal_{s}.h5", n_samples=n, split=s, **kw)
                 for s, n in (("train", 2000), ("test", 500))}
        cfg = DelaySNNConfig.shd(n_outputs=20, delays=args.delays)
    else:
        files = {s: split_path(args.root, s, args.dataset) for s in ("train", "test")}
        missing = [str(p) for p in files.values() if not p.exists()]
        if missing:
            print(f"{args.dataset.upper()} files not found: {', '.join(missing)}. Download them (spikeseq data "
                  f"fetch {args.dataset}) or pass --root; --dataset temporal runs without any download.",
                  file=sys.stderr)
            return 2
        cfg = (DelaySNNConfig.shd if args.dataset == "shd" else DelaySNNConfig.ssc)(delays=args.delays)
    data = {}
    for split in ("train", "test"):
        x, y = load_frames(files[split], dt=cfg.dt, duration=None, downsample=5, n_channels=700)
        if args.limit:
            x, y = x[: args.limit], y[: args.limit]
        data[f"x_{split}"], data[f"y_{split}"] = x, y
    t_max = max(data["x_train"].shape[1], data["x_test"].shape[1])
    for split in ("train", "test"):  # one common length
        x = data[f"x_{split}"]
        data[f"x_{split}"] = torch.nn.functional.pad(x, (0, 0, 0, t_max - x.shape[1]))
    epochs = args.epochs or cfg.train["epochs"]
    batch = args.batch_size or cfg.train["batch_size"]
    print(f"{args.dataset}: {len(data['x_train'])} train / {len(data['x_test'])} test samples, T={t_max}, "
          f"C={data['x_train'].shape[2]}, delays={args.delays}, {epochs} epochs, batch {batch}", flush=True)
    r = train(cfg, data, epochs=epochs, batch_size=batch, seed=args.seed, lr_w=cfg.train["lr_w"],
              max_lr_w=cfg.train["max_lr_w"], lr_pos=cfg.train["lr_pos"], weight_decay=cfg.train["weight_decay"])
    model = r["model"].round_delays()
    acc_int = evaluate_integer(model, data["x_test"], data["y_test"], 256)
    print(f"test accuracy {100 * r['test_acc']:.2f}% (eval mode); with rounded integer delays "
          f"{100 * acc_int:.2f}%")
    if args.json:
        write_json(args.json, {"args": vars(args), "test_acc": r["test_acc"], "test_acc_integer": acc_int,
                               "history": r["history"], "train_s": r["train_s"]})
    if tmp is not None:
        tmp.cleanup()
    return 0


@torch.no_grad()
def evaluate_integer(model, x, y, batch_size: int) -> float:
    from spikeseq.models.delay_snn import predict

    model.eval()
    correct = 0
    for s in range(0, len(x), batch_size):
        v, _ = model.forward_integer(model.pad(x[s:s + batch_size].transpose(0, 1).contiguous()))
        correct += int((predict(v) == y[s:s + batch_size]).sum())
    return correct / len(x)

if __name__ == "__main__":
    sys.exit(main())
