"""Checkpoints for the ``rwkv`` package (BlinkDL's ChatRWKV runtime, PyPI ``rwkv`` 0.8.x).

:func:`save_rwkv_checkpoint` writes the non-spiking RWKV-4 (model ``rwkv4``) as the ``.pth`` state dict that
``rwkv.model.RWKV(path, strategy="cpu fp32")`` loads: spikeseq's parameter names are RWKV-4's (``emb.weight``,
``blocks.{i}.ln0/ln1/ln2``, ``att.time_decay/time_first/time_mix_k/v/r``, ``att.key/value/receptance/output``,
``ffn.time_mix_k/r``, ``ffn.key/receptance/value``, ``ln_out``, ``head``), tensors float32, time parameters shaped
``[1, 1, C]`` as RWKV-LM saves them. That runtime then gives the same logits (tested to 1e-4).

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
