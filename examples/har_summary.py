"""Summarise ``examples/har_train.py --json`` reports as a Markdown table (mean and spread over seeds).

    .venv/bin/python examples/har_summary.py runs/*.json
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def _fmt(values: list[float], pct: bool = True) -> str:
    scale = 100 if pct else 1
    vals = [v * scale for v in values]
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ({', '.join(f'{v:.1f}' for v in vals)})"


def main(paths: list[str]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        groups[(r["model"], r["dataset"], r.get("recipe"))].append(r)
    rows = ["| model | dataset | seeds | test acc % (per seed) | acc % at 25 / 50 % of the window | params | "
            "s / epoch | activation sparsity | AC / sample | MAC / sample |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for (model, dataset, _), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["seed"])
        act = [r["activity"] for r in rs]
        sp = [a["activation_sparsity"] for a in act if a.get("activation_sparsity") is not None]
        rows.append(
            "| " + " | ".join([
                model, dataset, ",".join(str(r["seed"]) for r in rs), _fmt([r["test_acc"] for r in rs]),
                _fmt([r["streaming_acc"]["0.25"] for r in rs]) + " / " + _fmt([r["streaming_acc"]["0.5"] for r in rs]),
                str(rs[0]["params"]), f"{statistics.mean(r['mean_epoch_seconds'] for r in rs):.0f}",
                f"{statistics.mean(sp):.3f}" if sp else "n/a (non-spiking)",
                f"{statistics.mean(a['ac_per_sample'] for a in act):.3g}",
                f"{statistics.mean(a['mac_per_sample'] for a in act):.3g}",
            ]) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
