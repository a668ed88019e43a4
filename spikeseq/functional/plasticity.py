"""Hebbian subspace learning (Oja's subspace rule) and the orthogonal projection HLOP builds on it.

The equations, written once (Oja 1989 subspace rule; used by HLOP, Xiao et al., ICLR 2024, ``specs/models.md``
section 6, reference code ``pkuxmq/HLOP-SNN`` ``modules/hlop_module.py``). For presynaptic inputs ``x`` (rows of
``X [N, n]``) and ``k`` subspace neurons with lateral weights ``H [k, n]``::

    y      = H x                                  (subspace neuron activity, [k])
    y_q    = round(clamp(y, -S, S) / S * T_l) * S / T_l     (optional spiking lateral circuit: spike counts of
                                                  T_l steps at full scale S; HLOP README: S = 20, T_l = 40)
    x_hat  = H^T y                                (reconstruction by the lateral feedback)
    dH     = mean_over_batch( y (x - x_hat)^T )   (Hebbian y x^T minus anti-Hebbian y y^T H)
    dH     = dH / mean_over_batch( |r|^2 )        (optional normalised step; r = x - H_old^T H_old x, the part of
                                                  the input the old rows leave to the new ones)
    dH     = clamp(dH, -c, c)                     (c = 10 in the reference code)
    M      = m M + (1 - m) dH                     (momentum m = 0.9, an exponential moving average)
    H      = H + eta M                            (eta = 0.001 input layer, 0.01 hidden layers, PMNIST MLP)

Only the *plastic* rows of ``H`` (the neurons added for the current task) change; the rows of earlier tasks are
fixed but still take part in ``y`` and ``x_hat``, so the new neurons learn the part of the input the old ones do
not explain. The rule converges at a rate ``eta * lambda`` (``lambda`` the eigenvalues of ``E[r r^T]``), so with a
fixed ``eta`` a layer whose residual ``r`` carries little power (a deep layer, or any layer after a few tasks have
taken most of its input's energy) stays unconverged; the normalised step divides ``dH`` by the residual's mean
power, which makes the rate independent of the input's scale (as normalised LMS does for the LMS rule). The fixed
point of the rule is an orthonormal basis of the top-``k`` principal subspace of the (uncentred) input correlation
``E[x x^T]`` (Oja 1989); :func:`principal_subspace` is that closed form, :func:`subspace_quality` how near a
subspace is to it.

Projection (HLOP's weight update): the gradient of a weight ``W [out, n]`` fed by ``x`` is ``sum delta x^T``;
HLOP replaces ``x`` by its residual ``x - P x`` with ``P = H^T H`` (or the exact orthogonal projector of
``span(H)``). Because ``P`` is symmetric this equals ``G (I - P)`` for the whole accumulated gradient ``G`` -- the
same for BPTT (a sum over time steps), convolutions (``G`` flattened to ``[out, in * kh * kw]``, the unfolded
patches) and data-parallel averaging.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError

#: Clamp of the Hebbian update and the momentum of the reference code (``hlop_module.py``: ``clamp(.., -10, 10)``,
#: ``m = 0.9``).
DELTA_CLAMP = 10.0
MOMENTUM = 0.9
#: Iterations of the rule per minibatch in the reference code (``forward_with_update(x, iteration=5)``).
ITERATIONS = 5


def _check_pair(h: torch.Tensor, x: torch.Tensor) -> None:
    if h.dim() != 2:
        raise ShapeError(f"lateral weights H must be [k, n], got shape {tuple(h.shape)}")
    if x.dim() != 2 or x.shape[1] != h.shape[1]:
        raise ShapeError(f"inputs must be [N, n] with n = {h.shape[1]} (the columns of H), got {tuple(x.shape)}")


def spike_quantise(y: torch.Tensor, scale: float, steps: float) -> torch.Tensor:
    """``round(clamp(y, -S, S) / S * T_l) * S / T_l``: the spike-count code of the spiking lateral circuit."""
    if not scale > 0 or not steps > 0:
        raise ParameterError(f"spiking lateral circuit needs scale > 0 and steps > 0, got {scale}, {steps}")
    return torch.round(y.clamp(-scale, scale) / scale * steps) * (scale / steps)


def oja_subspace_delta(h: torch.Tensor, x: torch.Tensor, *, spiking: tuple[float, float] | None = None
                       ) -> torch.Tensor:
    """``dH = mean_b y (x - H^T y)^T`` with ``y = H x`` (``y`` spike-quantised when ``spiking = (S, T_l)``).

    ``h`` ``[k, n]``, ``x`` ``[N, n]``; returns ``[k, n]`` (unclamped).
    """
    _check_pair(h, x)
    y = x @ h.t()
    if spiking is not None:
        y = spike_quantise(y, *spiking)
    x_hat = y @ h
    return y.t() @ (x - x_hat) / x.shape[0]


#: Ways :func:`oja_subspace_step` evaluates ``N dH`` (:func:`oja_step_costs`).
OJA_FORMS = ("auto", "residual", "gram")
#: ``"auto"`` takes the Gram form where it needs at least this many times fewer multiply-adds than the residual
#: form. The forms round differently, and a continual run is chaotic in its rounding: one seed of permuted N-MNIST
#: moved by 4 points of ACC when its hidden layers' steps (32 x 100 inputs, 15 new rows) were merely reordered into
#: ``y^T r - (y^T y) H_new``, a 1.15x saving that the per-call overhead of the extra product eats at such sizes.
FORM_MIN_SAVING = 2.0


def oja_step_costs(n_rows: int, n: int, k_old: int, k_new: int, iterations: int) -> dict[str, int]:
    """Multiply-adds of the two exact forms of :func:`oja_subspace_step` (``n_rows`` inputs of ``n`` features,
    ``k_old`` fixed and ``k_new`` plastic rows)::

        residual  r = x - H_old^T y_old once (2 N n k_old); per iteration y = H_new x (N n k_new), the residual
                  r - y H_new (N n k_new) and y^T (r - y H_new) (N n k_new)
        gram      C = X^T X (N n^2) and D = X^T R = C - (C H_old^T) H_old (2 n^2 k_old) once; per iteration
                  H_new D (k_new n^2), H_new C H_new^T (k_new n^2 + k_new^2 n) and (.) H_new (k_new^2 n)

    The Gram form does not look at the samples again after ``C``: it pays when there are many more rows than
    features (an EGRU's recurrent inputs, every step of every sequence: N = T B = 2048 rows of n = 64, 2.7x fewer
    with 32 old and 8 new rows). With a batch of firing rates (N = 32 rows of n = 578) the residual form is far
    cheaper."""
    return {"residual": 2 * n_rows * n * k_old + iterations * 3 * n_rows * n * k_new,
            "gram": n_rows * n * n + 2 * n * n * k_old + iterations * (2 * k_new * n * n + 2 * k_new * k_new * n)}


def silent_residual_rtol(n: int, dtype: torch.dtype) -> float:
    """Below this fraction of the input's power, the normalised step treats the residual as silent (no step): a
    residual of ``n`` features computed in ``dtype`` carries rounding errors of about ``n * eps`` of the input's
    power (the Gram form's ``tr(D) - tr(H_old D H_old^T)`` cancels to that), and dividing by a power of rounding
    noise alone would turn the noise into a step of full size. Inputs inside the old rows' span are silent."""
    return n * torch.finfo(dtype).eps


def oja_subspace_step(h: torch.Tensor, momentum_buf: torch.Tensor, x: torch.Tensor, *, lr: float,
                      plastic_from: int = 0, momentum: float = MOMENTUM, clamp: float = DELTA_CLAMP,
                      iterations: int = ITERATIONS, spiking: tuple[float, float] | None = None,
                      reduce: Callable[[torch.Tensor], torch.Tensor] | None = None, normalize: bool = False,
                      inplace: bool = False, form: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """``iterations`` steps of the rule on one batch ``x`` ``[N, n]``; returns the new ``(H, M)`` (``inplace``:
    ``h`` and ``momentum_buf`` themselves, updated in place, instead of new tensors).

    Rows ``< plastic_from`` of ``H`` (old tasks' neurons) and of the momentum ``M`` stay unchanged; the other rows
    follow :func:`oja_subspace_delta` exactly (computed without the old rows' delta). ``reduce`` maps each
    batch-mean ``dH`` of the plastic rows before it is applied (data-parallel training averages it over ranks),
    and the residual's power of the normalised step (``normalize``: ``dH / mean |r|^2``) likewise.

    The fixed rows' part of the reconstruction does not change over the iterations: with ``r = x - H_old^T y_old``,
    ``N dH_new = y^T (r - y H_new) = y^T r - (y^T y) H_new`` (``y = H_new x``). ``form`` (:data:`OJA_FORMS`)
    chooses how that is evaluated, both exactly (they differ by rounding only): ``"residual"``, the first
    expression, from the rows of ``x``; ``"gram"``, the second, from the input correlation ``C = X^T X`` alone
    (``y^T r = H_new C (I - P)``, ``y^T y = H_new C H_new^T``, ``sum |r|^2 = tr((I - P) C (I - P))``,
    ``P = H_old^T H_old``), which needs ``y_old`` linear in ``x`` (not with ``spiking``); ``"auto"``: the Gram form
    where :func:`oja_step_costs` counts :data:`FORM_MIN_SAVING` times fewer multiply-adds, else the residual form.
    """
    _check_pair(h, x)
    if momentum_buf.shape != h.shape:
        raise ShapeError(f"momentum buffer {tuple(momentum_buf.shape)} must match H {tuple(h.shape)}")
    if not 0 <= plastic_from <= h.shape[0]:
        raise ParameterError(f"plastic_from must lie in [0, k={h.shape[0]}], got {plastic_from}")
    if iterations < 1 or not lr > 0 or not 0 <= momentum < 1 or not clamp > 0:
        raise ParameterError(f"need iterations >= 1, lr > 0, 0 <= momentum < 1, clamp > 0; got {iterations}, {lr}, "
                             f"{momentum}, {clamp}")
    if form not in OJA_FORMS:
        raise ParameterError(f"form must be one of {OJA_FORMS}, got {form!r}")
    if form == "gram" and spiking is not None:
        raise ParameterError("form='gram' needs a linear lateral circuit: the spike-quantised y_old of spiking=(S, "
                             "T_l) is not a function of X^T X; use form='residual' or 'auto'")
    if h.dtype in (torch.float16, torch.bfloat16):
        # half precision: the powers, the clamp bound and n * eps (1.56 for bfloat16 at n = 200: every input would
        # be "silent") do not fit the dtype; the step runs in float32 and is rounded back once
        h32, m32 = h.float(), momentum_buf.float()
        oja_subspace_step(h32, m32, x.float(), lr=lr, plastic_from=plastic_from, momentum=momentum, clamp=clamp,
                          iterations=iterations, spiking=spiking, reduce=reduce, normalize=normalize, inplace=True,
                          form=form)
        if not inplace:
            return h32.to(h.dtype), m32.to(h.dtype)
        h.copy_(h32)
        momentum_buf.copy_(m32)
        return h, momentum_buf
    k0 = plastic_from
    h_old = h[:k0]
    h_new, m_new = (h[k0:], momentum_buf[k0:]) if inplace else (h[k0:].clone(), momentum_buf[k0:].clone())
    if h_new.shape[0] and x.shape[0]:  # no rows, no step (the batch mean would divide by N = 0)
        n_rows = x.shape[0]
        if form == "auto":
            costs = oja_step_costs(n_rows, h.shape[1], k0, h_new.shape[0], iterations)
            gram_pays = spiking is None and costs["gram"] * FORM_MIN_SAVING <= costs["residual"]
            form = "gram" if gram_pays else "residual"
        terms = _GramTerms(x, h_old) if form == "gram" else _SampleTerms(x, h_old, spiking)
        inv_power = 1.0  # normalised step: dH / mean |r|^2, before the clamp (which then is scale-free too)
        if normalize:  # mean |r|^2 (in h's dtype) and mean |x|^2 (data-parallel: both in one reduction)
            if reduce is None:
                power = float(terms.residual_power() / max(n_rows, 1))
                total = float(terms.input_power()) / max(n_rows, 1)
            else:
                power, total = reduce(torch.stack([terms.residual_power(), terms.input_power()])
                                      / max(n_rows, 1)).tolist()
            if not power > silent_residual_rtol(h.shape[1], h.dtype) * total:  # no residual: nothing to learn
                if not (math.isfinite(power) and math.isfinite(total)):
                    raise NonFiniteError("oja_subspace_step: the inputs' residual power is NaN/Inf (non-finite x)")
                iterations = 0
            inv_power = 1.0 / max(power, torch.finfo(h.dtype).tiny)
        # clamp(N dH / p, -N c, N c) = clamp(N dH, -N c p, N c p) / p: the 1 / (N p) goes into the momentum's weight
        bound = clamp * n_rows / inv_power
        for _ in range(iterations):
            d = terms.scaled_delta(h_new)  # N * dH: the mean is in the momentum's weight below
            if reduce is not None:
                d = reduce(d)
            m_new.mul_(momentum).add_(d.clamp_(-bound, bound), alpha=(1.0 - momentum) * inv_power / n_rows)
            h_new.add_(m_new, alpha=lr)
    if inplace:
        return h, momentum_buf
    return torch.cat([h_old, h_new]), torch.cat([momentum_buf[:k0], m_new])


class _SampleTerms:
    """``N dH = y^T (r - y H_new)`` from the samples: the residuals ``r [N, n]`` once, then per iteration three
    ``[N, n, k_new]`` products, the difference written into one buffer allocated per call."""

    def __init__(self, x: torch.Tensor, h_old: torch.Tensor, spiking: tuple[float, float] | None) -> None:
        y_old = x @ h_old.t()
        if spiking is not None:
            y_old = spike_quantise(y_old, *spiking)
        self.x, self.spiking = x, spiking
        self.r = torch.addmm(x, y_old, h_old, alpha=-1.0)
        self.buffer: torch.Tensor | None = None

    def residual_power(self) -> torch.Tensor:
        flat = self.r.reshape(-1)
        return torch.dot(flat, flat)

    def input_power(self) -> torch.Tensor:
        flat = self.x.reshape(-1)
        return torch.dot(flat, flat)

    def scaled_delta(self, h_new: torch.Tensor) -> torch.Tensor:
        y = self.x @ h_new.t()
        if self.spiking is not None:
            y = spike_quantise(y, *self.spiking)
        if self.buffer is None:
            self.buffer = torch.empty_like(self.r)
        return torch.mm(y.t(), torch.addmm(self.r, y, h_new, alpha=-1.0, out=self.buffer))


class _GramTerms:
    """``N dH = H_new D - (H_new C H_new^T) H_new`` from ``C = X^T X`` and ``D = X^T R = C (I - P)``: one
    ``[N, n, n]`` product, then only ``[n, n]``-sized work per iteration, all in float64. ``D`` and
    ``H_new C H_new^T`` are differences of terms of the input's whole power, so in float32 the update erred by about
    ``eps / rho`` where the residual holds a share ``rho`` of that power: 11 % at rho = 1e-5 for an EGRU-sized step
    (N = 2048, n = 64, 32 old and 8 new rows), where the residual form errs 0.1 %, and the new rows drifted off
    orthonormal (6e-2) and into the old span. In float64 both match the residual form's (the Gram step then took
    370 instead of 200 us, against the residual form's 590 us)."""

    def __init__(self, x: torch.Tensor, h_old: torch.Tensor) -> None:
        wide = torch.promote_types(x.dtype, torch.float64)
        xw, h_old = x.to(wide), h_old.to(wide)
        self.c = xw.t() @ xw
        self.h_old = h_old
        self.d = torch.addmm(self.c, self.c @ h_old.t(), h_old, alpha=-1.0) if h_old.shape[0] else self.c

    def residual_power(self) -> torch.Tensor:
        # sum |r|^2 = tr(R^T R) = tr((I - P) D) = tr(D) - tr(H_old D H_old^T); clamped at 0 against rounding
        power = torch.trace(self.d)
        if self.h_old.shape[0]:
            power = power - torch.trace(self.h_old @ self.d @ self.h_old.t())
        return power.clamp_min(0.0)

    def input_power(self) -> torch.Tensor:
        return torch.trace(self.c)

    def scaled_delta(self, h_new: torch.Tensor) -> torch.Tensor:
        hw = h_new.to(self.c.dtype)
        return torch.addmm(hw @ self.d, (hw @ self.c) @ hw.t(), hw, alpha=-1.0).to(h_new.dtype)


def orthonormal_basis(h: torch.Tensor, rtol: float = 1e-6) -> torch.Tensor:
    """An orthonormal basis ``Q [r, n]`` of the row space of ``h`` (SVD; singular values below ``rtol * max``
    dropped), so that ``Q^T Q`` is the exact orthogonal projector onto ``span(H)``."""
    if h.dim() != 2:
        raise ShapeError(f"expected a [k, n] matrix, got shape {tuple(h.shape)}")
    if h.shape[0] == 0:
        return h.new_zeros(0, h.shape[1])
    _, s, vh = torch.linalg.svd(h.double(), full_matrices=False)
    keep = s > rtol * s.max().clamp_min(torch.finfo(torch.float64).tiny)
    return vh[keep].to(h.dtype)


def project_residual(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``x - B^T B x`` along the last axis of ``x`` (``B [k, n]``): the part of ``x`` outside ``span(B)`` when
    ``B`` has orthonormal rows (HLOP's ``x - H_old^T H_old x``). For a weight gradient ``G [out, n]`` this is
    ``G (I - B^T B)``, the projected update."""
    if basis.dim() != 2 or x.shape[-1] != basis.shape[1]:
        raise ShapeError(f"x's last axis ({x.shape[-1]}) must equal the columns of the basis {tuple(basis.shape)}")
    if basis.shape[0] == 0:
        return x
    if x.dim() == 2:
        return torch.addmm(x, x @ basis.t(), basis, alpha=-1)
    return x - (x @ basis.t()) @ basis


def principal_subspace(x: torch.Tensor, k: int) -> torch.Tensor:
    """Closed-form reference: the top-``k`` right singular vectors of ``X [N, n]`` (rows of the result, ``[k, n]``),
    i.e. the principal subspace of the uncentred correlation ``X^T X / N`` that Oja's rule converges to."""
    if x.dim() != 2:
        raise ShapeError(f"expected inputs [N, n], got shape {tuple(x.shape)}")
    if not 1 <= k <= min(x.shape):
        raise ParameterError(f"k must lie in [1, min(N, n) = {min(x.shape)}], got {k}")
    _, _, vh = torch.linalg.svd(x.double(), full_matrices=False)
    return vh[:k].to(x.dtype)


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the row spaces of ``a [k1, n]`` and ``b [k2, n]``
    (Björck & Golub 1973: ``arccos`` of the singular values of ``Q_a Q_b^T``)."""
    qa, qb = orthonormal_basis(a).double(), orthonormal_basis(b).double()
    s = torch.linalg.svdvals(qa @ qb.t()).clamp(-1.0, 1.0)
    return torch.arccos(s)


def subspace_quality(corr: torch.Tensor, rows: torch.Tensor) -> dict[str, float]:
    """How much of the input energy the subspace ``span(rows)`` (``[k, n]``) captures, against the best ``k``-dim
    subspace, for inputs with (uncentred, summed) correlation ``corr = sum_i r_i r_i^T`` (``[n, n]``)::

        captured = tr(Q C Q^T) / tr(C)        (Q: orthonormal basis of the rows)
        best     = sum of the k largest eigenvalues of C / tr(C)      (PCA, Eckart-Young)
        ratio    = captured / best            (1: the rows span a principal subspace)

    The rule's fixed point (:func:`oja_subspace_step`) has ``ratio = 1``; an unconverged subspace less.
    """
    if corr.dim() != 2 or corr.shape[0] != corr.shape[1] or rows.dim() != 2 or rows.shape[1] != corr.shape[0]:
        raise ShapeError(f"need corr [n, n] and rows [k, n], got {tuple(corr.shape)} and {tuple(rows.shape)}")
    c = corr.double()
    q = orthonormal_basis(rows).double()
    total = float(torch.trace(c))
    if q.shape[0] == 0 or not total > 0:
        return {"k": int(q.shape[0]), "captured": 0.0, "best": 0.0, "ratio": 1.0 if q.shape[0] == 0 else 0.0}
    captured = float(torch.einsum("kn,nm,km->", q, c, q)) / total
    best = float(torch.linalg.eigvalsh(c)[-q.shape[0]:].sum()) / total
    return {"k": int(q.shape[0]), "captured": captured, "best": best, "ratio": captured / best if best > 0 else 1.0}

