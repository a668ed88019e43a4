"""``spikeseq bench generation``: RNN-mode generation at batch 1: tokens/s and memory over a long stream.

Builds a language model of the registry (``--model``, ``--size`` and ``--vocab``, random weights: speed does not
depend on them) with an RNN step ``logits, state = model.step(ids [1], state)``, feeds it ``--tokens`` tokens one at
a time (each the argmax of the previous logits), one thread, and reports tokens/s and the process's resident memory
(RSS, from /proc) at 10 %, 50 % and 100 % of the stream, plus the size of the state. When the model can write an
``rwkv`` package checkpoint (``model.rwkv_state_dict()``, the non-spiking RWKV-4) and that package is installed,
the same model runs in ``rwkv.model.RWKV(..., "cpu fp32")`` on the same token stream, timed in interleaved blocks
of ``--block`` tokens (medians), and the logits of both are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from spikeseq._args import positive_int
from spikeseq._atomic import write_text
from spikeseq.provenance import bench_command, git_commit, git_dirty


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench generation`` options to ``parser``."""
    parser.add_argument("--model", required=True, help="registry name of a language model with an RNN step")
    parser.add_argument("--size", default="cpu_small", help="the model's size preset")
    parser.add_argument("--vocab", type=positive_int, default=65)
    parser.add_argument("--tokens", type=positive_int, default=10_000, help="stream length for the memory check")
    parser.add_argument("--speed-tokens", type=positive_int, default=600, help="tokens timed against the rwkv package")
    parser.add_argument("--block", type=positive_int, default=50, help="tokens per interleaved timing block")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this path")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20




def _rwkv_runner(model, tmpdir: str):
    if not hasattr(model, "rwkv_state_dict"):
        return None, "the model has no rwkv-package checkpoint (spiking models run in spikeseq only)"
    os.environ.setdefault("RWKV_JIT_ON", "1")
    os.environ.setdefault("RWKV_CUDA_ON", "0")
    try:
        from rwkv.model import RWKV
    except ImportError:
        return None, "the rwkv package is not installed (pip install --no-deps rwkv)"
    try:
        sd = model.rwkv_state_dict()
    except Exception as e:  # a spiking model refuses
        return None, str(e)
    path = Path(tmpdir) / "model.pth"
    torch.save(sd, path)
    return RWKV(model=str(path), strategy="cpu fp32", verbose=False), ""


def run(args: argparse.Namespace) -> int:
    """Measure, print, write the JSON."""
    from spikeseq.models.registry import build

    torch.set_num_threads(args.threads)
    t_start = time.time()
    torch.manual_seed(0)
    model = build(args.model, size=args.size, vocab=args.vocab).eval()
    with torch.no_grad():
        for p in model.parameters():  # random weights everywhere (the RWKV init zeroes several projections)
            if p.dim() == 2:
                p.normal_(0, 0.1)
    ours = model.step
    result: dict = {"command": bench_command("generation"), "commit": git_commit(),
                    "dirty": git_dirty(),
                    "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                               if k not in ("func",)},
                    "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__}}
    with tempfile.TemporaryDirectory() as tmp:
        theirs, why = _rwkv_runner(model, tmp)
        # speed, interleaved blocks on the same token stream
        times: dict[str, list[float]] = {"spikeseq": [], "rwkv": []}
        st_o = st_t = None
        tok = 0
        max_diff = 0.0
        n_blocks = max(1, args.speed_tokens // args.block)
        with torch.no_grad():
            for b in range(n_blocks + 1):
                toks = []
                t0 = time.perf_counter()
                for _ in range(args.block):
                    logits, st_o = ours(torch.tensor([tok]), st_o)
                    toks.append(tok)
                    tok = int(logits[0].argmax())
                if b:
                    times["spikeseq"].append(args.block / (time.perf_counter() - t0))
                if theirs is not None:
                    t0 = time.perf_counter()
                    outs = []
                    for t_ in toks:
                        out, st_t = theirs.forward([t_], st_t)
                        outs.append(out)
                    if b:
                        times["rwkv"].append(args.block / (time.perf_counter() - t0))
                    max_diff = max(max_diff, float((logits[0] - outs[-1].float()).abs().max()))
        speed = {"spikeseq_tokens_per_s": statistics.median(times["spikeseq"])}
        if theirs is not None:
            speed["rwkv_tokens_per_s"] = statistics.median(times["rwkv"])
            speed["ratio_spikeseq_over_rwkv"] = speed["spikeseq_tokens_per_s"] / speed["rwkv_tokens_per_s"]
            speed["max_abs_logit_diff_last_token_of_block"] = max_diff
        else:
            speed["rwkv"] = f"not run: {why}"
        result["speed"] = speed
        # memory over a long stream
        marks = {max(1, args.tokens // 10), max(1, args.tokens // 2), args.tokens}
        rss = {}
        st, tok = None, 0
        state_bytes = None
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(1, args.tokens + 1):
                logits, st = ours(torch.tensor([tok]), st)
                tok = int(logits[0].argmax())
                if i in marks:
                    rss[str(i)] = round(_rss_mb(), 2)
                if state_bytes is None:
                    state_bytes = sum(t.numel() * t.element_size() for blk in st.blocks for t in blk)
        result["memory"] = {"rss_mb_at_tokens": rss, "state_bytes": state_bytes,
                            "rss_growth_mb_first_mark_to_end": round(rss[str(args.tokens)] - rss[str(min(marks))], 2),
                            "stream_tokens_per_s": args.tokens / (time.perf_counter() - t0)}
    result["wall_s"] = round(time.time() - t_start, 1)
    print(json.dumps({"speed": result["speed"], "memory": result["memory"]}, indent=2))
    if args.json is not None:
        write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0
