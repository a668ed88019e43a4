"""The RWKV-4 WKV operator (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era", eq. 14; SpikeGPT's
SRWKV, Zhu et al. TMLR 2024, eq. 7), reference implementation.

Per channel ``c`` with decay rate ``w > 0`` (``w = exp(time_decay)``) and bonus ``u`` (``time_first``), on keys
``k[t]`` and values ``v[t]``:

    wkv[t] = ( sum_{i<t} e^{-(t-1-i) w + k[i]} v[i] + e^{u + k[t]} v[t] )
           / ( sum_{i<t} e^{-(t-1-i) w + k[i]}      + e^{u + k[t]}      )

As a recurrence over the true sums ``A[t] = sum_{i<=t} e^{-(t-i) w + k[i]} v[i]`` and ``B[t]`` (same, without
``v``): ``A[t] = e^{-w} A[t-1] + e^{k[t]} v[t]``, ``wkv[t] = (A[t-1] + e^{u+k[t]} v[t]) / (B[t-1] + e^{u+k[t]})``.
``A`` and ``B`` overflow, so the state is kept relative to a running maximum exponent ``p`` (the official RWKV-4
CUDA kernel's stabilisation): ``WKVState(a, b, p)`` with ``A = a e^p``, ``B = b e^p`` and one step

    q  = max(p, u + k);      y = (e^{p-q} a + e^{u+k-q} v) / (e^{p-q} b + e^{u+k-q})
    p' = max(p - w, k);      a' = e^{p-w-p'} a + e^{k-p'} v;      b' = e^{p-w-p'} b + e^{k-p'}

so every exponential is of a number <= 0. The initial state is ``a = b = 0``, ``p = -1e38``. ``p`` is the running
maximum ``max_i(k[i] - (t-i) w)``, the same in every form below, so final states agree field by field.

Three forms, all agreeing on outputs, final states and every gradient:

- :func:`wkv_step` / :func:`wkv_scan`: the step above and the reference loop over time (autograd through it);
- :func:`wkv_chunked`: the parallel form for training on the CPU (chunks of ``L`` steps; inside a chunk one batched
  matmul with a per-channel ``L x L`` decay matrix, between chunks a scan over ``T / L`` chunk states). It is exact
  (to rounding) whenever, inside each chunk, the spread of ``k`` plus ``|u|`` stays below ``tau`` = 60 (fp32) or
  600 (fp64): then each row's largest term is at least ``e^{-tau}`` of the chunk's reference and nothing that
  matters underflows. Channels of a sequence with a wider chunk are computed by the reference loop instead, so the
  result is exact for every input. No length limit (no ``T_MAX``).

Shapes are time-first: ``k, v`` ``[T, B, C]`` (the step form ``[B, C]``), ``w, u`` ``[C]``. Half-precision inputs
are computed in float32 and the outputs cast back.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeseq.checks import check_floating, check_sequence
from spikeseq.errors import NonFiniteError, ParameterError, ShapeError

#: The "minus infinity" of the stabilised state (the RWKV-4 CUDA kernel uses -1e38): exp(P0 - x) == 0.
P0 = -1e38
#: Spread of ``k`` (plus |u|) inside one chunk up to which the chunked form is exact; see the module docstring.
SPREAD = {torch.float32: 60.0, torch.float64: 600.0}


class WKVState(NamedTuple):
    """Stabilised WKV state: true sums ``A = a e^p``, ``B = b e^p``; each field ``[B, C]``."""

    a: torch.Tensor
    b: torch.Tensor
    p: torch.Tensor


def initial_wkv_state(batch: int, channels: int, *, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> WKVState:
    """The state before the first token: ``a = b = 0``, ``p = -1e38``."""
    z = torch.zeros(batch, channels, dtype=dtype, device=device)
    return WKVState(z, z.clone(), torch.full_like(z, P0))


def wkv_compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype WKV accumulates in: float64 for float64 inputs, else float32 (bf16/fp16 inputs too)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_wkv_args(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, u: torch.Tensor, state: WKVState | None,
                   step: bool) -> None:
    """Raise a ShapeError/ParameterError naming the argument when the WKV inputs do not fit (shared by kernels)."""
    if step:
        check_floating(k, "k")
        if k.dim() != 2:
            raise ShapeError(f"wkv_step takes k, v of shape [B, C], got {tuple(k.shape)}; use wkv_scan for [T, B, C]")
    else:
        check_sequence(k, "k", min_rank=3)
        if k.dim() != 3:
            raise ShapeError(f"k and v must be [T, B, C], got {tuple(k.shape)}")
    check_floating(v, "v")
    if v.shape != k.shape:
        raise ShapeError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    c = k.shape[-1]
    for name, t in (("w", w), ("u", u)):
        if not isinstance(t, torch.Tensor) or t.shape != (c,):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"{name} must be a tensor of shape [C] = [{c}] (one value per channel), got {got}")
        if not bool(torch.isfinite(t.detach()).all()):
            raise NonFiniteError(f"WKV parameter {name} contains NaN or Inf")
    if bool((w.detach() < 0).any()):
        raise ParameterError("the WKV decay rate w must be >= 0 (w = exp(time_decay)); got a negative value")
    if state is not None:
        if not isinstance(state, WKVState):
            raise ShapeError(f"state must be a WKVState(a, b, p) or None, got {type(state).__name__}")
        bc = tuple(k.shape[-2:])
        for name, s in zip(WKVState._fields, state, strict=True):
            if tuple(s.shape) != bc:
                raise ShapeError(
                    f"WKV state field {name} has shape {tuple(s.shape)} but the input step is {bc}; pass state=None "
                    "to start from the beginning, or the state returned for the same batch and channels"
                )


def wkv_start_state(k: torch.Tensor, state: WKVState | None, dtype: torch.dtype) -> WKVState:
    """``state`` in ``dtype``, or the initial WKV state for ``k``'s batch and channels when it is ``None``."""
    if state is None:
        return initial_wkv_state(k.shape[-2], k.shape[-1], dtype=dtype, device=k.device)
    return WKVState(*(s.to(dtype) for s in state))


def wkv_update(k, v, a, b, p, w, u):
    """One stabilised step on tensors (the equations of the module docstring), without checks."""
    ww = u + k
    q = torch.maximum(p, ww)
    e1, e2 = torch.exp(p - q), torch.exp(ww - q)
    y = (e1 * a + e2 * v) / (e1 * b + e2)
    ww = p - w
    q = torch.maximum(ww, k)
    e1, e2 = torch.exp(ww - q), torch.exp(k - q)
    return y, e1 * a + e2 * v, e1 * b + e2, q


def wkv_step(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
             u: torch.Tensor) -> tuple[torch.Tensor, WKVState]:
    """One token (RNN mode, generation): ``k, v`` ``[B, C]``; returns ``wkv`` ``[B, C]`` and the new state."""
    check_wkv_args(k, v, w, u, state, step=True)
    dt = wkv_compute_dtype(k)
    st = wkv_start_state(k, state, dt)
    y, a, b, p = wkv_update(k.to(dt), v.to(dt), *st, w.to(dt), u.to(dt))
    return y.to(k.dtype), WKVState(a, b, p)


def wkv_scan(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
             u: torch.Tensor) -> tuple[torch.Tensor, WKVState]:
    """The reference: a loop of :func:`wkv_step` over ``[T, B, C]`` under autograd; returns ``wkv`` and the state."""
    check_wkv_args(k, v, w, u, state, step=False)
    dt = wkv_compute_dtype(k)
    a, b, p = wkv_start_state(k, state, dt)
    wd, ud = w.to(dt), u.to(dt)
    ys = []
    for k_t, v_t in zip(k.to(dt).unbind(0), v.to(dt).unbind(0), strict=True):
        y, a, b, p = wkv_update(k_t, v_t, a, b, p, wd, ud)
        ys.append(y)
    return torch.stack(ys).to(k.dtype), WKVState(a, b, p)


def _decay_matrix(w: torch.Tensor, L: int) -> torch.Tensor:
    """``D[c, s, i] = e^{-(s-1-i) w_c}`` for ``i < s`` (0 otherwise), ``s = 0..L``: row ``L`` is the chunk end."""
    s = torch.arange(L + 1, device=w.device, dtype=w.dtype)[:, None]
    i = torch.arange(L, device=w.device, dtype=w.dtype)[None, :]
    lag = s - 1 - i
    mask = lag >= 0
    return torch.exp(-lag.clamp_min(0)[None] * w[:, None, None]) * mask


def _chunks(k, v, a, b, p, w, u):
    """Full chunks ``k, v`` ``[n, L, B, C]`` from state ``(a, b, p)``; returns ``y`` and the state after them."""
    n, L, B, C = k.shape
    D = _decay_matrix(w, L)  # [C, L+1, L]
    r = k.amax(dim=1, keepdim=True) + torch.relu(u)  # chunk reference, [n, 1, B, C]
    x = torch.exp(k - r)
    xs = torch.stack((x * v, x))  # [2, n, L, B, C]
    rhs = xs.permute(4, 2, 0, 1, 3).reshape(C, L, 2 * n * B)
    out = torch.bmm(D, rhs).reshape(C, L + 1, 2, n, B).permute(2, 3, 1, 4, 0)  # [2, n, L+1, B, C]
    e = torch.exp(u + k - r)
    num, den = out[0, :, :L] + e * v, out[1, :, :L] + e
    # chunk-local end sums (zero initial state) relative to pe = max_i (k_i - (L-1-i) w), the reference's p
    lag_end = torch.arange(L - 1, -1, -1, device=k.device, dtype=k.dtype)[:, None, None] * w  # [L, 1, C]
    pe = (k - lag_end).amax(dim=1)  # [n, B, C]
    scale = torch.exp(r[:, 0] - pe)
    a_loc, b_loc = out[0, :, L] * scale, out[1, :, L] * scale
    # scan over chunks for the state entering each chunk
    Lw = L * w
    a_in, b_in, p_in = [], [], []
    for j in range(n):
        a_in.append(a)
        b_in.append(b)
        p_in.append(p)
        pd = p - Lw
        q = torch.maximum(pd, pe[j])
        f1, f2 = torch.exp(pd - q), torch.exp(pe[j] - q)
        a, b, p = f1 * a + f2 * a_loc[j], f1 * b + f2 * b_loc[j], q
    A, Bs, P = torch.stack(a_in)[:, None], torch.stack(b_in)[:, None], torch.stack(p_in)[:, None]  # [n, 1, B, C]
    ps = P - torch.arange(L, device=k.device, dtype=k.dtype)[:, None, None] * w  # [n, L, B, C]
    rho = torch.maximum(r, ps)
    f_in, f_st = torch.exp(r - rho), torch.exp(ps - rho)
    y = (f_in * num + f_st * A) / (f_in * den + f_st * Bs)
    return y.reshape(n * L, B, C), a, b, p


def _chunked(k, v, a, b, p, w, u, L):
    T, B, C = k.shape
    n, rest = divmod(T, L)
    ys = []
    if n:
        y, a, b, p = _chunks(k[: n * L].reshape(n, L, B, C), v[: n * L].reshape(n, L, B, C), a, b, p, w, u)
        ys.append(y)
    if rest:
        y, a, b, p = _chunks(k[n * L:].unsqueeze(0), v[n * L:].unsqueeze(0), a, b, p, w, u)
        ys.append(y)
    return torch.cat(ys) if len(ys) > 1 else ys[0], a, b, p


def _wide(k: torch.Tensor, u: torch.Tensor, L: int) -> torch.Tensor:
    """``[B, C]`` mask of the series with a chunk whose ``k`` spread plus ``|u|`` exceeds :data:`SPREAD`."""
    T, B, C = k.shape
    n = -(-T // L)
    pad = n * L - T
    kd = k.detach()
    if pad:
        kd = torch.cat((kd, kd[-1:].expand(pad, B, C)))
    kc = kd.reshape(n, L, B, C)
    spread = (kc.amax(1) - kc.amin(1)).amax(0) + u.detach().abs()
    return spread > SPREAD[k.dtype]


def wkv_chunked(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
                u: torch.Tensor, chunk: int = 32) -> tuple[torch.Tensor, WKVState]:
    """The chunked parallel form of :func:`wkv_scan` (same signature plus the chunk length; see module docstring)."""
    check_wkv_args(k, v, w, u, state, step=False)
    if not isinstance(chunk, int) or chunk < 1:
        raise ParameterError(f"chunk must be a positive int, got {chunk!r}")
    dt = wkv_compute_dtype(k)
    st = wkv_start_state(k, state, dt)
    kd, vd, wd, ud = k.to(dt), v.to(dt), w.to(dt), u.to(dt)
    wide = _wide(kd, ud, chunk)
    if not bool(wide.any()):
        y, a, b, p = _chunked(kd, vd, *st, wd, ud, chunk)
        return y.to(k.dtype), WKVState(a, b, p)
    # series with a too-wide chunk: the reference loop; the rest: the chunked form on harmless keys
    y, a, b, p = _chunked(torch.where(wide, 0.0, kd), vd, *st, wd, ud, chunk)
    B, C = wide.shape
    wb, ub = wd.expand(B, C)[wide], ud.expand(B, C)[wide]
    ref_state = WKVState(*(s[wide][None] for s in st))
    yr, (ar, br, pr) = wkv_scan(kd[:, wide][:, None], vd[:, wide][:, None], ref_state, w=wb, u=ub)
    y = y.clone()
    y[:, wide] = yr[:, 0]
    a, b, p = a.clone(), b.clone(), p.clone()
    a[wide], b[wide], p[wide] = ar[0], br[0], pr[0]
    return y.to(k.dtype), WKVState(a, b, p)
