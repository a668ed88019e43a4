"""Checkpoints for the ``rwkv`` package (BlinkDL's ChatRWKV runtime, PyPI ``rwkv`` 0.8.x).

:func:`save_rwkv_checkpoint` writes the non-spiking RWKV-4 (model ``rwkv4``) as the ``.pth`` state dict that
``rwkv.model.RWKV(path, strategy="cpu fp32")`` loads: spikeseq's parameter names are RWKV-4's (``emb.weight``,
``blocks.{i}.ln0/ln1/ln2``, ``att.time_decay/time_first/time_mix_k/v/r``, ``att.key/value/receptance/output``,
``ffn.time_mix_k/r``, ``ffn.key/receptance/value``, ``ln_out``, ``head``), tensors float32, time parameters shaped
``[1, 1, C]`` as RWKV-LM saves them. That runtime then gives the same logits (tested to 1e-4).

:func:`load_rwkv_checkpoint` reads such a checkpoint (written here, or an RWKV-4 ``.pth`` of RWKV-LM / ChatRWKV in
any float dtype) back into the non-spiking ``rwkv4`` model, its shape (``n_layer``, ``n_embd``, ``vocab``,
``hidden``) read from the tensors; RWKV-5/6/7 checkpoints are refused naming the keys that show it.

Spiking checkpoints (model ``spikegpt``) are refused: no outside runtime runs them. The ``rwkv`` package has no
spiking embedding or LIF branch outputs, and SpikeGPT's own ``model_run.py`` needs CUDA and CuPy; a SpikeGPT
checkpoint runs in spikeseq only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from spikeseq.errors import ConfigError

NO_OUTSIDE_RUNTIME = ("a spiking SpikeGPT checkpoint runs in spikeseq only: no outside runtime runs it (the `rwkv` "
                      "package has no spiking embedding or LIF branches; SpikeGPT's model_run.py needs CUDA + CuPy)")


def rwkv_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The RWKV-4 state dict of a non-spiking :class:`~spikeseq.models.spikegpt.modules.SpikeGPT` (see module
    docstring)."""
    if not hasattr(getattr(model, "config", None), "spiking"):
        raise ConfigError(f"expected a SpikeGPT / RWKV-4 model, got {type(model).__name__}")
    if model.config.spiking:
        raise ConfigError(NO_OUTSIDE_RUNTIME)
    out: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        t = v.detach().float().cpu().contiguous()
        if ".time_" in k:
            t = t.reshape(1, 1, -1)
        out[k] = t.clone()
    return out


def save_rwkv_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write the model for ``rwkv.model.RWKV(path, "cpu fp32")`` (atomically); returns the path (``.pth``)."""
    path = Path(path)
    if path.suffix != ".pth":
        raise ConfigError(f"the rwkv package loads '<name>.pth' files; got {path.name!r}")
    sd = rwkv_state_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(sd, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


#: Keys of RWKV-5/6/7 checkpoints that RWKV-4 has not (group norm, gate, data-dependent mixes and decays).
_NOT_V4 = ("att.ln_x", "att.gate", "att.time_faaaa", "att.time_maa", "att.time_decay_w", "att.x_", "att.w0")


def load_rwkv_checkpoint(source, *, ctx_len: int = 1024):
    """The non-spiking RWKV-4 (model ``rwkv4``) of an ``rwkv``-package / RWKV-LM checkpoint: ``source`` a path
    to the ``.pth`` or its state dict. Shape from the tensors (``emb.weight`` ``[vocab, C]``, ``ffn.key.weight``
    ``[hidden, C]``, the number of ``blocks.{i}``), time parameters ``[1, 1, C]`` or ``[C]``, weights converted
    to float32; ``ctx_len``: the parallel form's context (RNN mode has none). ConfigError naming what does not
    fit (an RWKV-5/6/7 checkpoint, missing or unexpected keys)."""
    from spikeseq.models.registry import build  # not .modules: it imports this module (no cycle)

    sd = source if isinstance(source, dict) else torch.load(Path(source), map_location="cpu", weights_only=True)
    newer = sorted({k for k in sd for tag in _NOT_V4 if tag in k})
    if newer:
        raise ConfigError(f"not an RWKV-4 checkpoint (keys of RWKV-5/6/7: {', '.join(newer[:4])}); spikeseq's "
                          "rwkv4 model is RWKV-4")
    try:
        vocab, channels = (int(n) for n in sd["emb.weight"].shape)
        hidden = int(sd["blocks.0.ffn.key.weight"].shape[0])
    except (KeyError, ValueError, AttributeError) as e:
        raise ConfigError(f"not an RWKV-4 checkpoint: no emb.weight [vocab, C] or blocks.0.ffn.key.weight ({e})") \
            from None
    n_layer = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    model = build("rwkv4", vocab=vocab, n_layer=n_layer, n_embd=channels, ctx_len=ctx_len,
                  hidden=None if hidden == 4 * channels else hidden)
    ours = model.state_dict()
    missing, unexpected = sorted(set(ours) - set(sd)), sorted(set(sd) - set(ours))
    if missing or unexpected:
        raise ConfigError(f"the checkpoint does not fit RWKV-4 ({n_layer} layers x {channels}): missing "
                          f"{missing[:5]}, unexpected {unexpected[:5]}")
    loaded = {}
    for k, t in ours.items():
        src = sd[k].detach().to(torch.float32)
        if ".time_" in k:
            src = src.reshape(-1)
        if src.shape != t.shape:
            raise ConfigError(f"checkpoint tensor {k} has shape {tuple(sd[k].shape)}, RWKV-4 {n_layer} x "
                              f"{channels} needs {tuple(t.shape)}")
        loaded[k] = src
    model.load_state_dict(loaded)
    return model.eval()
