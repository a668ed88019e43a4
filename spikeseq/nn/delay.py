"""``DelayLinear``: a dense synaptic layer with one learnable weight and one learnable delay per synapse.

Equations, the sigma schedule and sources: :mod:`spikeseq.functional.delay` (DCLS, Hammouamri et al., ICLR 2024;
``specs/models.md`` §5). Which computation runs:

==============================================  =========================================================
call                                            path
==============================================  =========================================================
``layer.train()``, delays learnable             Gaussian-interpolated taps of width ``|sigma| + 0.27``
``layer.eval()`` (or delays fixed)              the ``sigma -> 0`` limit: integer shift by ``round(delay)``
``layer.forward_integer(x)``                    integer shift; the delays must already be integers
                                                (:meth:`DelayLinear.round_delays`), else ParameterError
==============================================  =========================================================

Integer shifts run as one gather-sum when no gradient is needed (inference, export checks) and as a one-hot
``conv1d`` when one is (training with fixed delays); both compute ``y[t, :, j] = sum_i W_ji x[t - D_ji, :, i]``.

For graph tracers and exporters: :meth:`DelayLinear.integer_weights_and_delays` returns plain tensors
``(W [out, in] float, D [out, in] int64 time steps)`` after :meth:`DelayLinear.round_delays`; the layer then
computes exactly ``y[t, b, j] = bias_j + sum_i W[j, i] * x[t - D[j, i], b, i]`` (causal, zero before the start),
at the layer's time step (the model's ``dt``); ``bias`` is ``layer.bias`` (``None`` by default). This is the
graph IR's ``DelayAffine`` node.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spikeseq.errors import ParameterError
from spikeseq.functional import delay as fd
from spikeseq.nn.base import StatefulModule


def _check_sigma(sigma: float) -> None:
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ParameterError(f"sigma must be a finite number >= 0 (the Gaussian width in steps; the schedule runs "
                             f"from max_delay / 2 down to {fd.SIGMA_FINAL}), got {sigma!r}")


class DelayLinear(StatefulModule):
    """``y, state = layer(x [T, B, in], state=None)`` -> ``y [T, B, out]``; delays in time steps in ``[0, max_delay]``.

    Args:
        in_features, out_features: layer size.
        max_delay: the largest delay in steps (K = max_delay + 1 taps). The paper's SHD setting, 25 taps of 10 ms,
            is ``max_delay=24``.
        bias: add a learnable bias (the paper's SHD config has none).
        learn_delay: ``False`` draws random integer delays once and keeps them fixed (the paper's "fixed random
            delays" ablation).
        sigma: initial Gaussian sigma (default ``max_delay / 2``, the paper's ``K // 2``); change it with
            :meth:`set_sigma` following :func:`spikeseq.functional.delay.sigma_schedule`.
        sigma_offset: width offset, ``s = |sigma| + sigma_offset`` (0.27 as in dcls).
        generator: random generator for the initial weights and delays.
    """

    def __init__(self, in_features: int, out_features: int, max_delay: int, *, bias: bool = False,
                 learn_delay: bool = True, sigma: float | None = None, sigma_offset: float = fd.SIGMA_OFFSET,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.max_delay = fd.check_max_delay(max_delay)
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"DelayLinear {name} must be an integer >= 1, got {v!r}")
        if not (math.isfinite(sigma_offset) and sigma_offset >= 0):
            raise ParameterError(f"sigma_offset must be a finite number >= 0 (the Gaussian width is |sigma| + "
                                 f"sigma_offset; dcls uses 0.27), got {sigma_offset!r}")
        _check_sigma(float(max_delay) / 2 if sigma is None else sigma)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.learn_delay = bool(learn_delay)
        self.sigma_offset = float(sigma_offset)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default (kaiming_uniform with a = sqrt(5))
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
        d = fd.uniform_delays((out_features, in_features), max_delay, generator=generator)
        self.delay = nn.Parameter(d.round() if not learn_delay else d, requires_grad=self.learn_delay)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("sigma", torch.tensor(float(max_delay) / 2 if sigma is None else float(sigma)))
        self._plan: tuple[tuple, fd.IntegerPlan, torch.Tensor, torch.Tensor] | None = None

    # ---- delays -------------------------------------------------------------------------------------------
    def set_sigma(self, sigma: float) -> None:
        """Set the Gaussian width ``sigma`` (in steps, >= 0; see :func:`~spikeseq.functional.delay.sigma_schedule`)."""
        _check_sigma(sigma)
        self.sigma.fill_(float(sigma))

    @torch.no_grad()
    def clamp_delays_(self) -> None:
        """Clamp the delays into ``[0, max_delay]`` in place (call after every optimizer step, as the paper)."""
        self.delay.clamp_(0, self.max_delay)

    @torch.no_grad()
    def round_delays(self) -> DelayLinear:
        """Clamp and round the delays to integers in place (the paper's ``round_pos``); returns ``self``."""
        self.delay.clamp_(0, self.max_delay).round_()
        return self

    def freeze_delays(self) -> DelayLinear:
        """Round the delays and stop learning them (the paper's optional fine-tuning stage with integer delays):
        training then runs the integer path and only the weights learn. Returns ``self``."""
        self.round_delays()
        self.learn_delay = False
        self.delay.requires_grad_(False)
        return self

    def delays_are_integer(self) -> bool:
        """Whether every delay is a whole number of steps in ``[0, max_delay]`` (needed by forward_integer)."""
        d = self.delay.detach()
        return bool(torch.equal(d, d.round())) and bool((d >= 0).all()) and bool((d <= self.max_delay).all())

    def integer_weights_and_delays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W [out, in] float, D [out, in] int64 steps)`` as plain tensors (copies) for tracers and exporters.

        Requires integer delays: call :meth:`round_delays` first (raises ParameterError otherwise).
        """
        d = fd.integer_delays(self.delay.detach(), self.max_delay)
        return self.weight.detach().clone(), d.clone()

    def eval_delays(self) -> torch.Tensor:
        """The delays the eval-mode forward shifts by: clamped into ``[0, max_delay]`` and rounded (a float copy;
        the parameter is not changed). NaN or Inf delays raise :class:`~spikeseq.errors.ParameterError` naming
        ``delay`` (the clamp would turn an Inf into 0 or ``max_delay`` silently)."""
        fd.check_finite_parameters(delay=self.delay)
        return self.delay.detach().clamp(0, self.max_delay).round()

    def eval_weights_and_delays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W [out, in] float, D [out, in] int64 steps)`` of the eval-mode forward (:meth:`eval_delays`), for
        tracers: the same as :meth:`integer_weights_and_delays` after :meth:`round_delays`, without changing the
        layer."""
        return self.weight.detach().clone(), fd.integer_delays(self.eval_delays(), self.max_delay).clone()

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> fd.DelayState:
        """Silence before the sequence, for streaming (``step``) from the start."""
        return fd.DelayState(torch.zeros(self.max_delay, batch_size, self.in_features,
                                         device=device or self.weight.device, dtype=dtype or self.weight.dtype))

    # ---- forward ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: fd.DelayState | None = None):
        """``y [T, B, out], state = layer(x [T, B, in], state)``: the path of the module docstring's table."""
        if self.training and self.learn_delay:
            return fd.delay_gaussian(x, state, weight=self.weight, delay=self.delay, sigma=self.sigma,
                                     max_delay=self.max_delay, bias=self.bias, sigma_offset=self.sigma_offset)
        return self._integer(x, state, self.eval_delays())

    def forward_integer(self, x: torch.Tensor, state: fd.DelayState | None = None):
        """Integer shifts by the delays as they are (they must be whole steps already: :meth:`round_delays`),
        the semantics of an exported graph; :class:`~spikeseq.errors.ParameterError` otherwise."""
        return self._integer(x, state, self.delay)

    def _integer(self, x: torch.Tensor, state: fd.DelayState | None, delay: torch.Tensor):
        fd.check_finite_parameters(self.weight, None, self.bias)  # by name, before they are folded into a kernel
        d = fd.integer_delays(delay, self.max_delay)
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if needs_grad:
            one_hot = torch.nn.functional.one_hot(d, self.max_delay + 1).to(self.weight.dtype)
            return fd.delay_conv(x, self.weight.unsqueeze(-1) * one_hot, state, bias=self.bias)
        # The plan is reused only for the very weights and delays it was built from: compared by value (O(out * in),
        # small next to the O(T * B * out * in) gather), since an in-place edit through ``.data`` (``w.data.mul_``,
        # ``delay.data.fill_``) changes neither ``_version`` nor ``data_ptr`` and a plan keyed on them went stale.
        w = self.weight.detach().to(x.dtype)
        key = (x.shape[0], x.device, x.dtype)
        cached = self._plan
        if cached is None or cached[0] != key or not torch.equal(cached[2], w) or not torch.equal(cached[3], d):
            cached = self._plan = (key, fd.integer_plan(w, d, self.max_delay, x.shape[0]), w.clone(), d.clone())
        return fd.delay_integer(x, state, weight=self.weight.detach(), delay=d, max_delay=self.max_delay,
                                bias=None if self.bias is None else self.bias.detach(), plan=cached[1])

    # ---- checkpoints --------------------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        d = state_dict.get(prefix + "delay")
        if isinstance(d, torch.Tensor):
            if not bool(torch.isfinite(d).all()) or bool((d < 0).any()) or bool((d > self.max_delay).any()):
                raise ParameterError(
                    f"the checkpoint's delays {prefix}delay lie outside [0, max_delay={self.max_delay}] (values in "
                    f"[{float(d.min()):g}, {float(d.max()):g}]); it was saved from a layer with another max_delay "
                    "or before clamping: build the layer with the checkpoint's max_delay, or clamp the tensor "
                    "(state_dict[key].clamp_(0, max_delay)) before loading"
                )
        self._plan = None
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        """Sizes, ``max_delay``, ``learn_delay``, bias and the current ``sigma`` for ``repr``."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, max_delay={self.max_delay}, "
                f"learn_delay={self.learn_delay}, bias={self.bias is not None}, sigma={float(self.sigma):g}")
