"""``spikeseq bench hlop``: training-step cost of HLOP relative to a plain training step, and inference unchanged.

Network: the permuted-N-MNIST recipe's spiking MLP (``examples/hlop/nmnist_permuted.toml``): input ``[T=10, B=32,
578]`` (2 x 17 x 17 event counts), Linear 100 -> LIF -> Linear 100 -> LIF -> Linear 10 -> LI. HLOP protects the
three Linear layers in the state of a second task: an old subspace (the recipe's k_init: 80, 30, 30) projects every
weight gradient, and the recipe's k_inc (60, 15, 15) new lateral neurons learn with 5 Oja iterations per batch
("rate" input, Hebbian lr 0.001 / 0.01 / 0.01). ``--recipe FILE.toml`` reads the hidden sizes and the
``[continual.hlop]`` settings (k_init, k_inc, lr, iterations, input, normalize) of another continual recipe of
the same 2-hidden-layer MLP; a recipe whose ``[model]`` gives its own ``input_size`` and ``n_classes`` (e.g.
``examples/hlop/hapt_subjects_egru.toml``, an EGRU classifier) times that model as the registry builds it, with
the recipe's protected ``layers`` and ``--steps`` / ``--batch`` inputs of its input width. A step is forward +
backward + SGD update on the same batch. Repetitions are interleaved (plain, HLOP, plain, ...) so background load
hits both alike; the report gives medians of wall and CPU time and their ratios (target <= 1.5).

Inference: with HLOP attached and the model in eval mode, the forward pass runs no hook; the bench checks that
the outputs are bit-identical and that :func:`spikeseq.profile.count` gives the same operation totals.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spikeseq._args import positive_int


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench hlop`` options to ``parser``."""
    parser.add_argument("--steps", type=positive_int, default=10, help="time steps T (default 10)")
    parser.add_argument("--batch", type=positive_int, default=32, help="batch size B (default 32)")
    parser.add_argument("--inputs", type=positive_int, default=578,
                        help="input features (default 578: N-MNIST 2x17x17)")
    parser.add_argument("--hidden", type=positive_int, default=100, help="hidden size (default 100)")
    parser.add_argument("--recipe", default=None,
                        help="continual recipe (TOML) whose [model] hidden and [continual.hlop] settings to use")
    parser.add_argument("--reps", type=positive_int, default=20, help="interleaved repetitions (default 20)")
    parser.add_argument("--input-mode", default="rate", choices=("rate", "step"),
                        help="HLOP presynaptic input (default rate)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", default=None, help="write the measurements to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Time plain vs HLOP training steps; check inference outputs and op counts are unchanged."""
    from spikeseq import nn as snn
    from spikeseq import profile
    from spikeseq.continual import HLOP

    torch.set_num_threads(args.threads)
    recipe_model = _recipe_model(args.recipe) if args.recipe is not None else None
    n_out = 10
    if recipe_model is None:
        if args.recipe is not None:
            args.hidden = _recipe_hidden(args.recipe)
        layers = ["layers.1", "layers.3", "layers.5"]
        network = (f"Linear {args.hidden} -> LIF -> Linear {args.hidden} -> LIF -> Linear 10 -> LI")

        def make():  # a 2-hidden-layer LIF network of building blocks (layers.1/3/5 are its weighted layers)
            torch.manual_seed(0)
            return snn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(args.inputs, args.hidden), snn.LIF(tau_mem=0.02, dt=1e-3),
                snn.SpikeLinear(args.hidden, args.hidden), snn.LIF(tau_mem=0.02, dt=1e-3),
                snn.SpikeLinear(args.hidden, 10), snn.LI(tau_mem=0.02, dt=1e-3))
    else:
        model_name, kw, layers = recipe_model
        args.inputs, n_out = int(kw["input_size"]), int(kw["n_classes"])
        network = f"{model_name} ({', '.join(f'{k}={v}' for k, v in kw.items())})"

        def make():
            from spikeseq.models import registry

            torch.manual_seed(0)
            return registry.build(model_name, **kw)

    g = torch.Generator().manual_seed(1)
    x = torch.poisson(torch.full((args.steps, args.batch, args.inputs), 0.3), generator=g)
    y = torch.randint(0, n_out, (args.batch,), generator=g)
    plain, hl = make(), make()
    cfg = _hlop_config(args, layers)
    hlop = HLOP(hl, cfg)
    hlop.begin_task(0)
    hl(x)  # some Hebbian learning so the old subspace is not the initial one
    hlop.end_task()
    hlop.begin_task(1)  # projection onto the old subspace + new neurons learning: the costly state
    opts = {id(m): torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (plain, hl)}

    def step(model) -> None:
        model.train()
        out, _ = model(x)
        loss = torch.nn.functional.cross_entropy(out.mean(0), y)
        opt = opts[id(model)]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    rows = [("plain step", lambda: step(plain)), ("HLOP step", lambda: step(hl))]
    for _, fn in rows:
        fn()
    wall: dict[str, list[float]] = {n: [] for n, _ in rows}
    cpu: dict[str, list[float]] = {n: [] for n, _ in rows}
    for _ in range(args.reps):
        for name, fn in rows:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio, ratio_cpu = med["HLOP step"] / med["plain step"], med_cpu["HLOP step"] / med_cpu["plain step"]

    # inference: same weights, HLOP attached vs a plain copy
    ref = make()
    ref.load_state_dict(hl.state_dict())
    hl.eval()
    ref.eval()
    with torch.no_grad():
        same = bool(torch.equal(hl(x)[0], ref(x)[0]))
    ca, cb = profile.count(hl, x), profile.count(ref, x)
    same_ops = _totals(ca) == _totals(cb)
    hlop.detach()

    print(f"bench hlop: x [{args.steps}, {args.batch}, {args.inputs}], {network}; HLOP on {len(layers)} layers (old "
          f"k {cfg.k_init}, new {cfg.k_inc}, {cfg.iterations} Oja iterations per batch, input {cfg.input!r}); "
          f"{args.reps} interleaved reps, {torch.get_num_threads()} torch threads")
    for name in med:
        print(f"  {name:12s} median {1e3 * med[name]:8.2f} ms wall, {1e3 * med_cpu[name]:8.2f} ms CPU")
    print(f"  HLOP / plain training step: {ratio:.3f} (wall), {ratio_cpu:.3f} (CPU)   target <= 1.5")
    print(f"  inference with HLOP attached (eval): outputs identical: {same}; profiler op totals identical: "
          f"{same_ops}")
    if args.json:
        import json
        import os
        import platform

        from spikeseq import _atomic
        from spikeseq.provenance import bench_command, git_commit

        machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                   "threads": torch.get_num_threads()}
        _atomic.write_text(args.json, json.dumps({"bench": "hlop", "command": bench_command("hlop"),
                               "commit": git_commit(), "machine": machine,
                               "shape": [args.steps, args.batch, args.inputs],
                               "hidden": args.hidden, "network": network, "layers": layers, "reps": args.reps,
                               "recipe": args.recipe,
                               "k_init": cfg.k_init, "k_inc": cfg.k_inc, "normalize": cfg.normalize,
                               "threads": torch.get_num_threads(),
                               "input_mode": cfg.input, "median_s": med, "median_cpu_s": med_cpu,
                               "ratio_wall": ratio, "ratio_cpu": ratio_cpu, "inference_identical": same,
                               "inference_ops_identical": same_ops, "ops": _totals(ca)}, indent=2) + "\n")
    return 0


def _read_recipe(path: str) -> dict:
    """The recipe's TOML tables; :class:`ConfigError` naming the file when it cannot be read or parsed."""
    import tomllib

    from spikeseq.errors import ConfigError

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"--recipe {path}: cannot read it as TOML ({e})") from None


def _recipe_model(path: str) -> tuple[str, dict, list[str]] | None:
    """``(model name, [model] keywords, [continual.hlop] layers)`` of a continual recipe whose ``[model]`` names its
    own ``input_size`` and ``n_classes`` (``None`` for a recipe of the MLP this bench builds itself, which gives only
    ``hidden``); :class:`ConfigError` when it cannot be read or such a recipe lists no ``layers``."""
    from spikeseq.errors import ConfigError

    raw = _read_recipe(path)
    model = dict(raw.get("model", {}))
    name = model.pop("name", None)
    if not {"input_size", "n_classes"} <= model.keys():
        return None
    layers = raw.get("continual", {}).get("hlop", {}).get("layers")
    if not isinstance(name, str) or not isinstance(layers, list):
        raise ConfigError(f"--recipe {path}: bench hlop builds the recipe's [model] (name, input_size, n_classes) and "
                          "protects its [continual.hlop] layers; the recipe must give the model's name and the layers")
    return name, model, layers


def _recipe_hidden(path: str) -> int:
    from spikeseq.errors import ConfigError

    raw = _read_recipe(path)
    hidden = raw.get("model", {}).get("hidden")
    if not (isinstance(hidden, list) and len(hidden) == 2 and len(set(hidden)) == 1):
        raise ConfigError(f"--recipe {path}: bench hlop times a 2-hidden-layer MLP of equal widths; [model] hidden "
                          f"is {hidden!r}")
    return int(hidden[0])


def _hlop_config(args: argparse.Namespace, layers: list[str]):
    """The HLOP settings timed: the recipe's ``[continual.hlop]`` (``--recipe``) or those of the permuted-N-MNIST
    recipe (capped for small ``--inputs`` / ``--hidden``)."""
    from spikeseq.continual import HLOPConfig

    if args.recipe is not None:
        hl = _read_recipe(args.recipe).get("continual", {}).get("hlop", {})
        keep = {k: v for k, v in hl.items() if k in ("k_init", "k_inc", "lr", "iterations", "input", "normalize")}
        return HLOPConfig(layers=layers, freeze_1d=False, **{"input": args.input_mode, **keep})
    n, h = args.inputs, args.hidden
    return HLOPConfig(layers=layers,
                      k_init={"layers.1": min(80, n // 2), "layers.3": min(30, h // 3), "layers.5": min(30, h // 3)},
                      k_inc={"layers.1": min(60, n // 4), "layers.3": min(15, h // 6), "layers.5": min(15, h // 6)},
                      lr={"layers.1": 0.001, "layers.3": 0.01, "layers.5": 0.01}, input=args.input_mode,
                      freeze_1d=False)


def _totals(counts) -> dict[str, float]:
    """Whole-model operation totals of a :func:`spikeseq.profile.count` report."""
    return {k: float(v) for k, v in counts.totals().items()}
