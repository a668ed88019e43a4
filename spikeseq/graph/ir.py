"""The event-graph IR: typed dataclass nodes (a superset of NIR 1.0's primitives) joined by edges.

A :class:`Graph` holds ``nodes`` (name -> node), ``edges`` (``(src, dst)`` pairs; several edges into one node are
summed, as in NIR), the step ``dt`` in seconds (required: NIR graphs do not carry it, spikeseq graphs always do),
the ``discretization`` that turns time constants into per-step decays, and free ``metadata``.

Discrete semantics of the neuron nodes (``beta = decay(tau)`` is ``exp(-dt/tau)`` for ``discretization="exp"``,
``1 - dt/tau`` for ``"euler"``; ``g = 1 - beta`` is the per-step input factor, equal to ``dt/tau`` under Euler)::

    LI      v = beta*v + g*(v_leak + r*x)                                   sends the membrane v (dense)
    LIF     v' = beta*v + g*(v_leak + r*x); z = v' > v_threshold;
            v = v_reset where z ("zero"), v' - v_threshold where z ("subtract"), v' ("none")
    IF / I  v' = v + dt*r*x; z and reset as LIF (I never spikes and sends v)
    CubaLI  i = alpha*i + g_syn*w_in*x; v = beta*v + g_mem*(v_leak + r*i)    (the *new* current reaches v)
    CubaLIF CubaLI, then threshold and reset as LIF (i is never reset)

With ``r = 1/g`` (``= tau/dt`` under Euler) and ``w_in = 1/g_syn`` these are exactly spikeseq's
``v = beta*v + x`` and ``i = alpha*i + x`` (:mod:`spikeseq.functional.lif`, ``.cuba``); that is what
:func:`spikeseq.graph.trace` writes, and it is snnTorch's NIR convention (``r = tau/dt``, ``w_in = tau_syn/dt``).
The threshold comparison is strict (``v > v_threshold``) and the reset happens in the spike's step.

Synapse nodes (:class:`Affine`, :class:`Linear`, :class:`Conv1d`, :class:`Conv2d`, pooling and
:class:`DelayAffine`) are linear maps; what a node *sends* (:data:`Payload`) decides how the interpreter feeds the
next synapse: ``"spikes"`` (binary events: gather weight columns), ``"graded"`` (events carrying a value: gather
and scale) or ``"dense"`` (a value for every neuron every step: dense product). Timing: feed-forward edges have no
delay; an edge that closes a cycle reads the previous step's output (NIR / nirtorch / spikeseq recurrent modules);
the Loihi and SpiNNaker2 numerics of the interpreter add one step per synapse hop instead.

Kinds NIR lacks: :class:`DelayAffine` (per-synapse integer delays), ``graded=True`` spiking neurons (the spike
carries the membrane value), :class:`LMUMemory` (``m = A m + B u``), and the fixed-point neuron kinds written by
:mod:`spikeseq.graph.quantize` (:class:`LoihiCUBA`, :class:`S2LIF`), and :class:`EGRUCell`, a gated recurrent
population that only a programmable processing element (a SpiNNaker2 PE running a custom program) can host.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import ClassVar, Literal

import numpy as np

from spikeseq.dynamics import decay_factor
from spikeseq.errors import ExportError, NonFiniteError, ParameterError, ShapeError

Payload = Literal["spikes", "graded", "dense"]
PAYLOADS: tuple[str, ...] = ("spikes", "graded", "dense")
RESETS: tuple[str, ...] = ("zero", "subtract", "none")

__all__ = [
    "IF", "LI", "LIF", "PAYLOADS", "Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF", "Delay",
    "DelayAffine", "Flatten", "Graph", "I", "Input", "LMUMemory", "Linear", "LoihiCUBA", "Node", "Output",
    "EGRUCell", "Payload", "S2LIF", "Scale", "SumPool2d", "Threshold", "neuron_kinds", "synapse_kinds",
]

#: Parameter fields that must be finite (weights, biases, matrices, input scales); thresholds and time constants may
#: be +Inf ("never fires", "no leak").
_FINITE_ONLY = re.compile(r"^(weight.*|bias.*|w_in|A|B|scale|i_offset|delay)$")


def _arr(x, dtype=np.float64) -> np.ndarray:
    """A copy of ``x`` as ``dtype``; :class:`ParameterError` when a finite value overflows a float32 field (it would
    silently become Inf and later be reported as an Inf weight)."""
    if np.dtype(dtype) == np.float32:
        src = np.asarray(x)
        if src.dtype.kind == "f" and src.dtype.itemsize > 4:
            lim = float(np.finfo(np.float32).max)
            big = np.isfinite(src) & (np.abs(src) > lim)
            if big.any():
                v = float(src[big].flat[0])
                raise ParameterError(f"a value {v:g} ({int(big.sum())} such values in an array of shape "
                                     f"{src.shape}) is beyond the float32 range (+-{lim:.3g}) of graph weights "
                                     "and NIR files; rescale the layer (weights, bias and the next threshold together)")
    return np.array(x, dtype=dtype, copy=True)


def as_shape(x) -> tuple[int, ...]:
    """A shape as a tuple of ints (an int n is the shape (n,))."""
    if isinstance(x, (int, np.integer)):
        return (int(x),)
    return tuple(int(s) for s in x)


def _pair(x) -> tuple[int, int]:
    if isinstance(x, (int, np.integer)):
        return (int(x), int(x))
    t = tuple(int(v) for v in x)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


# ----------------------------------------------------------------------------------------------------------- nodes
@dataclass(eq=False)
class Node:
    """Base of every node. ``in_shape``/``out_shape`` exclude the batch; ``sends(p)`` is the payload emitted when
    the node receives payload ``p``."""

    kind: ClassVar[str] = "node"
    #: the NIR class this kind maps to one-to-one (``None``: no NIR equivalent)
    nir: ClassVar[str | None] = None
    role: ClassVar[str] = "other"  # "io", "synapse", "neuron", "shape"

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one input step, without the batch (each kind defines it)."""
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of one output step, without the batch (the input shape unless the kind changes it)."""
        return self.in_shape

    def sends(self, received: Payload) -> Payload:
        """The :data:`Payload` this node emits when it receives ``received`` (by default: the same)."""
        return received

    def params(self) -> dict:
        """The dataclass fields (arrays are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in={self.in_shape}, out={self.out_shape})"


@dataclass(eq=False, repr=False)
class Input(Node):
    """Graph input of ``shape`` (per step, no batch) carrying ``payload`` (spikes by default)."""

    shape: tuple[int, ...]
    payload: Payload = "spikes"
    kind: ClassVar[str] = "Input"
    nir: ClassVar[str | None] = "Input"
    role: ClassVar[str] = "io"

    def __post_init__(self):
        self.shape = as_shape(self.shape)
        if self.payload not in PAYLOADS:
            raise ParameterError(f"Input payload must be one of {PAYLOADS}, got {self.payload!r}")

    @property
    def in_shape(self):
        """``shape``."""
        return self.shape

    def sends(self, received):
        """The declared ``payload``, whatever is fed in."""
        return self.payload


@dataclass(eq=False, repr=False)
class Output(Node):
    """Graph output of ``shape`` (per step, no batch)."""

    shape: tuple[int, ...]
    kind: ClassVar[str] = "Output"
    nir: ClassVar[str | None] = "Output"
    role: ClassVar[str] = "io"

    def __post_init__(self):
        self.shape = as_shape(self.shape)

    @property
    def in_shape(self):
        """``shape``."""
        return self.shape


class _Synapse(Node):
    role: ClassVar[str] = "synapse"

    def sends(self, received):
        return "dense"


class _MatrixSynapse(_Synapse):
    """A synapse whose ``weight`` field is ``[out, in]``: its shapes follow from the matrix."""

    @property
    def in_shape(self):
        return (self.weight.shape[1],)

    @property
    def out_shape(self):
        return (self.weight.shape[0],)


@dataclass(eq=False, repr=False)
class Affine(_MatrixSynapse):
    """``y = W x + b``, ``weight`` [out, in]."""

    weight: np.ndarray
    bias: np.ndarray
    kind: ClassVar[str] = "Affine"
    nir: ClassVar[str | None] = "Affine"

    def __post_init__(self):
        self.weight = _arr(self.weight, np.float32)
        self.bias = _arr(self.bias, np.float32)
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(
                f"Affine needs weight [out, in] and bias [out], got {self.weight.shape}, {self.bias.shape}"
            )


@dataclass(eq=False, repr=False)
class Linear(_MatrixSynapse):
    """``y = W x``, ``weight`` [out, in]."""

    weight: np.ndarray
    kind: ClassVar[str] = "Linear"
    nir: ClassVar[str | None] = "Linear"

    def __post_init__(self):
        self.weight = _arr(self.weight, np.float32)
        if self.weight.ndim != 2:
            raise ShapeError(f"Linear needs weight [out, in], got {self.weight.shape}")


@dataclass(eq=False, repr=False)
class DelayAffine(_MatrixSynapse):
    """``y_i[t] = sum_j W_ij x_j[t - D_ij] + b_i`` with integer per-synapse delays ``delay`` [out, in] in steps
    (``nn.DelayLinear.integer_weights_and_delays()``). No NIR equivalent."""

    weight: np.ndarray
    delay: np.ndarray
    bias: np.ndarray | None = None
    kind: ClassVar[str] = "DelayAffine"

    def __post_init__(self):
        self.weight = _arr(self.weight, np.float32)
        self.delay = _arr(self.delay, np.int64)
        if self.bias is not None:
            self.bias = _arr(self.bias, np.float32)
        if self.weight.ndim != 2 or self.delay.shape != self.weight.shape:
            raise ShapeError(f"DelayAffine needs weight and delay of one shape [out, in], got {self.weight.shape}, "
                             f"{self.delay.shape}")
        if (self.delay < 0).any():
            raise ParameterError(f"DelayAffine delays must be >= 0 steps, min is {int(self.delay.min())}")


@dataclass(eq=False, repr=False)
class Scale(Node):
    """``y = s * x`` element-wise (a spike input becomes a graded one)."""

    scale: np.ndarray
    kind: ClassVar[str] = "Scale"
    nir: ClassVar[str | None] = "Scale"

    def __post_init__(self):
        self.scale = _arr(self.scale)

    @property
    def in_shape(self):
        """Shape of ``scale``."""
        return tuple(self.scale.shape)

    def sends(self, received):
        """``"dense"`` for dense input, otherwise ``"graded"`` (scaled spikes carry a value)."""
        return "dense" if received == "dense" else "graded"


def _conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(eq=False, repr=False)
class Conv2d(_Synapse):
    """PyTorch ``conv2d`` semantics on one sample. ``input_shape`` is the full (C, H, W)."""

    input_shape: tuple[int, int, int]
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    kind: ClassVar[str] = "Conv2d"
    nir: ClassVar[str | None] = "Conv2d"

    def __post_init__(self):
        self.weight = _arr(self.weight, np.float32)
        self.bias = _arr(self.bias, np.float32)
        self.input_shape = as_shape(self.input_shape)
        self.stride, self.padding, self.dilation = _pair(self.stride), _pair(self.padding), _pair(self.dilation)
        if self.weight.ndim != 4 or len(self.input_shape) != 3:
            raise ShapeError(f"Conv2d needs weight [Cout, Cin/groups, Kh, Kw] and input_shape (C, H, W), got "
                             f"{self.weight.shape}, {self.input_shape}")

    @property
    def in_shape(self):
        """``input_shape`` ``(C, H, W)``."""
        return self.input_shape

    @property
    def out_shape(self):
        """``(C_out, H_out, W_out)`` from the kernel size, stride, padding and dilation."""
        _, h, w = self.input_shape
        kh, kw = self.weight.shape[2:]
        return (self.weight.shape[0], _conv_out(h, kh, self.stride[0], self.padding[0], self.dilation[0]),
                _conv_out(w, kw, self.stride[1], self.padding[1], self.dilation[1]))


@dataclass(eq=False, repr=False)
class Conv1d(_Synapse):
    """PyTorch ``conv1d`` semantics on one sample. ``input_shape`` is (C, L)."""

    input_shape: tuple[int, int]
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    kind: ClassVar[str] = "Conv1d"
    nir: ClassVar[str | None] = "Conv1d"

    def __post_init__(self):
        self.weight = _arr(self.weight, np.float32)
        self.bias = _arr(self.bias, np.float32)
        self.input_shape = as_shape(self.input_shape)
        self.stride, self.padding, self.dilation = int(self.stride), int(self.padding), int(self.dilation)

    @property
    def in_shape(self):
        """``input_shape`` ``(C, L)``."""
        return self.input_shape

    @property
    def out_shape(self):
        """``(C_out, L_out)`` from the kernel size, stride, padding and dilation."""
        return (self.weight.shape[0], _conv_out(self.input_shape[1], self.weight.shape[2], self.stride,
                                                self.padding, self.dilation))


@dataclass(eq=False, repr=False)
class SumPool2d(_Synapse):
    """Window sum over (C, H, W)."""

    input_shape: tuple[int, int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    kind: ClassVar[str] = "SumPool2d"
    nir: ClassVar[str | None] = "SumPool2d"
    divide: ClassVar[bool] = False

    def __post_init__(self):
        self.input_shape = as_shape(self.input_shape)
        self.kernel_size, self.stride, self.padding = _pair(self.kernel_size), _pair(self.stride), _pair(self.padding)

    @property
    def in_shape(self):
        """``input_shape`` ``(C, H, W)``."""
        return self.input_shape

    @property
    def out_shape(self):
        """``(C, H_out, W_out)`` from the window, stride and padding."""
        c, h, w = self.input_shape
        return (c, _conv_out(h, self.kernel_size[0], self.stride[0], self.padding[0], 1),
                _conv_out(w, self.kernel_size[1], self.stride[1], self.padding[1], 1))


@dataclass(eq=False, repr=False)
class AvgPool2d(SumPool2d):
    """Window mean (``count_include_pad=True``)."""

    kind: ClassVar[str] = "AvgPool2d"
    nir: ClassVar[str | None] = "AvgPool2d"
    divide: ClassVar[bool] = True


@dataclass(eq=False, repr=False)
class Flatten(Node):
    """Reshape ``input_shape`` (no batch) flattening dims ``start_dim..end_dim`` (NIR counts the batch as dim 0)."""

    input_shape: tuple[int, ...]
    start_dim: int = 1
    end_dim: int = -1
    kind: ClassVar[str] = "Flatten"
    nir: ClassVar[str | None] = "Flatten"
    role: ClassVar[str] = "shape"

    def __post_init__(self):
        self.input_shape = as_shape(self.input_shape)

    @property
    def in_shape(self):
        """``input_shape`` (no batch)."""
        return self.input_shape

    @property
    def out_shape(self):
        """``input_shape`` with dims ``start_dim..end_dim`` merged (dims count the batch, as ``torch.flatten``)."""
        full = (1, *self.input_shape)
        s = self.start_dim % len(full)
        e = self.end_dim % len(full)
        return (*full[1:s], math.prod(full[s:e + 1]), *full[e + 1:])


@dataclass(eq=False, repr=False)
class Delay(Node):
    """``y(t) = x(t - delay)`` per neuron, ``delay`` in seconds (rounded to whole steps of the graph's dt)."""

    delay: np.ndarray
    kind: ClassVar[str] = "Delay"
    nir: ClassVar[str | None] = "Delay"

    def __post_init__(self):
        self.delay = _arr(self.delay)

    @property
    def in_shape(self):
        """Shape of ``delay``."""
        return tuple(self.delay.shape)


class _Neuron(Node):
    role: ClassVar[str] = "neuron"
    spiking: ClassVar[bool] = True

    def sends(self, received):
        if not self.spiking:
            return "dense"
        return "graded" if getattr(self, "graded", False) else "spikes"

    @property
    def in_shape(self):
        return tuple(self._first().shape)

    def _first(self) -> np.ndarray:
        return getattr(self, fields(self)[0].name)

    def _check(self):
        shapes = {f.name: np.shape(getattr(self, f.name)) for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        if len(set(shapes.values())) > 1:
            raise ShapeError(f"{self.kind} parameters must share one per-neuron shape, got {shapes}")
        if getattr(self, "reset", "zero") not in RESETS:
            raise ParameterError(f"{self.kind} reset must be one of {RESETS}, got {self.reset!r}")


@dataclass(eq=False, repr=False)
class Threshold(_Neuron):
    """``z = x > threshold`` (stateless)."""

    threshold: np.ndarray
    kind: ClassVar[str] = "Threshold"
    nir: ClassVar[str | None] = "Threshold"

    def __post_init__(self):
        self.threshold = _arr(self.threshold)


@dataclass(eq=False, repr=False)
class I(_Neuron):  # noqa: E742 - NIR's name for the integrator
    """Integrator ``v = v + dt*r*x`` (sends v)."""

    r: np.ndarray
    kind: ClassVar[str] = "I"
    nir: ClassVar[str | None] = "I"
    spiking: ClassVar[bool] = False

    def __post_init__(self):
        self.r = _arr(self.r)


@dataclass(eq=False, repr=False)
class IF(_Neuron):
    """Integrate-and-fire ``v' = v + dt*r*x``, threshold and reset as :class:`LIF` (module docstring; NIR ``IF``)."""

    r: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray | None = None
    reset: str = "zero"
    graded: bool = False
    kind: ClassVar[str] = "IF"
    nir: ClassVar[str | None] = "IF"

    def __post_init__(self):
        self.r, self.v_threshold = _arr(self.r), _arr(self.v_threshold)
        self.v_reset = np.zeros_like(self.r) if self.v_reset is None else _arr(self.v_reset)
        self._check()


@dataclass(eq=False, repr=False)
class LI(_Neuron):
    """Leaky integrator ``v = beta*v + g*(v_leak + r*x)``, sends ``v`` (module docstring; NIR ``LI``, ``tau`` in s)."""

    tau: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray | None = None
    kind: ClassVar[str] = "LI"
    nir: ClassVar[str | None] = "LI"
    spiking: ClassVar[bool] = False

    def __post_init__(self):
        self.tau, self.r = _arr(self.tau), _arr(self.r)
        self.v_leak = np.zeros_like(self.tau) if self.v_leak is None else _arr(self.v_leak)
        self._check()


@dataclass(eq=False, repr=False)
class LIF(_Neuron):
    """Leaky integrate-and-fire (module docstring; NIR ``LIF``): ``tau`` in s, strict ``v > v_threshold``, ``reset``.

    ``graded=True`` makes a spike carry the membrane value (not in NIR).
    """

    tau: np.ndarray
    r: np.ndarray
    v_threshold: np.ndarray
    v_leak: np.ndarray | None = None
    v_reset: np.ndarray | None = None
    reset: str = "zero"
    graded: bool = False
    kind: ClassVar[str] = "LIF"
    nir: ClassVar[str | None] = "LIF"

    def __post_init__(self):
        self.tau, self.r, self.v_threshold = _arr(self.tau), _arr(self.r), _arr(self.v_threshold)
        self.v_leak = np.zeros_like(self.tau) if self.v_leak is None else _arr(self.v_leak)
        self.v_reset = np.zeros_like(self.tau) if self.v_reset is None else _arr(self.v_reset)
        self._check()


@dataclass(eq=False, repr=False)
class CubaLI(_Neuron):
    """Current-based leaky integrator: ``i`` then ``v`` (module docstring; NIR ``CubaLI``), sends ``v``."""

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray
    w_in: np.ndarray | None = None
    v_leak: np.ndarray | None = None
    kind: ClassVar[str] = "CubaLI"
    nir: ClassVar[str | None] = "CubaLI"
    spiking: ClassVar[bool] = False

    def __post_init__(self):
        self.tau_syn, self.tau_mem, self.r = _arr(self.tau_syn), _arr(self.tau_mem), _arr(self.r)
        self.w_in = np.ones_like(self.r) if self.w_in is None else _arr(self.w_in)
        self.v_leak = np.zeros_like(self.r) if self.v_leak is None else _arr(self.v_leak)
        self._check()


@dataclass(eq=False, repr=False)
class CubaLIF(_Neuron):
    """Current-based LIF: :class:`CubaLI`, then threshold and reset as :class:`LIF` (NIR ``CubaLIF``)."""

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray
    v_threshold: np.ndarray
    w_in: np.ndarray | None = None
    v_leak: np.ndarray | None = None
    v_reset: np.ndarray | None = None
    reset: str = "zero"
    graded: bool = False
    kind: ClassVar[str] = "CubaLIF"
    nir: ClassVar[str | None] = "CubaLIF"

    def __post_init__(self):
        self.tau_syn, self.tau_mem = _arr(self.tau_syn), _arr(self.tau_mem)
        self.r, self.v_threshold = _arr(self.r), _arr(self.v_threshold)
        self.w_in = np.ones_like(self.r) if self.w_in is None else _arr(self.w_in)
        self.v_leak = np.zeros_like(self.r) if self.v_leak is None else _arr(self.v_leak)
        self.v_reset = np.zeros_like(self.r) if self.v_reset is None else _arr(self.v_reset)
        self._check()


@dataclass(eq=False, repr=False)
class LMUMemory(_Neuron):
    """Frozen LMU memory ``m[t] = A m[t-1] + B u[t]`` (``A`` [d, d], ``B`` [d, n]); sends m (dense).
    No NIR equivalent (it could be written as I/LI nodes with an explicit A feedback, at the cost of the
    per-step discretisation)."""

    A: np.ndarray
    B: np.ndarray
    kind: ClassVar[str] = "LMUMemory"
    spiking: ClassVar[bool] = False

    def __post_init__(self):
        self.A, self.B = _arr(self.A), _arr(self.B)
        d = self.A.shape[0]
        if self.A.shape != (d, d) or self.B.ndim != 2 or self.B.shape[0] != d:
            raise ShapeError(f"LMUMemory needs A [d, d] and B [d, n], got {self.A.shape}, {self.B.shape}")

    @property
    def in_shape(self):
        """``(n,)``, the number of memory inputs."""
        return (self.B.shape[1],)

    @property
    def out_shape(self):
        """``(d,)``, the memory order."""
        return (self.A.shape[0],)


@dataclass(eq=False, repr=False)
class LoihiCUBA(_Neuron):
    """Loihi CUBA compartment in integer units (lava ``PyLifModelBitAcc``, targets.md §4.2)::

        u = dec(u, i_decay) + (a << 6), wrapped to signed 24 bit      dec(x, d) = sign(x)*((|x|*(4096-d)) >> 12)
        v = dec(v, v_decay) + u + (bias << bias_exp), saturated to +-(2^23 - 1)
        z = v > (vth << 6); v = 0 where z                             (u is never reset)

    ``scale`` is the per-population float-to-mantissa factor chosen when quantising (float value = mantissa /
    scale; weights, ``vth`` and ``bias`` share it). slayer fixes it to 64 for every population (lava-dl
    ``slayer/neuron/cuba.py``: ``scale=1 << 6`` passed as ``w_scale``; ``slayer/neuron/base.py``:
    ``quantize_8bit`` steps of ``2 / w_scale``, ``v_th_mant = threshold * w_scale``); spikeseq picks it per
    population to use the 8-bit mantissa range, and writes it in the exported files (``.net`` layer attribute
    ``spikeseq_weight_scale``; Lava description ``scale``).

    ``readout=True`` marks a non-spiking readout of the model (LI/CubaLI: ``vth = 2**17 - 1``, the largest
    mantissa). On Loihi it is still a CUBA compartment: netx builds it as Lava's ``LIF``, which spikes and resets
    when ``v > vth << 6 = 2**23 - 64``, reachable only by a saturated membrane. The interpreter does the same (spike,
    reset to 0) and reads the readout's value as ``v`` after the reset; the files declare the readout (``.net``
    layer attribute ``spikeseq_readout``, Lava description ``readout``) so that tools probe ``v``, not spikes."""

    i_decay: np.ndarray
    v_decay: np.ndarray
    vth: np.ndarray
    bias: np.ndarray
    bias_exp: int = 6
    scale: float = 64.0
    readout: bool = False
    graded: bool = False
    kind: ClassVar[str] = "LoihiCUBA"

    def __post_init__(self):
        self.i_decay, self.v_decay = _arr(self.i_decay, np.int64), _arr(self.v_decay, np.int64)
        self.vth, self.bias = _arr(self.vth, np.int64), _arr(self.bias, np.int64)
        self._check()

    def sends(self, received):
        """``"dense"`` for a readout compartment (its membrane is read), else as any spiking neuron."""
        return "dense" if self.readout else super().sends(received)


@dataclass(eq=False, repr=False)
class S2LIF(_Neuron):
    """py-spinnaker2 ``lif_no_delay`` / ``lif_curr_exp_no_delay`` population in float32 (targets.md §4.4)::

        i = exc_decay*i + sum_j w_ij z_j          (lif_curr_exp; plain lif: i = sum_j w_ij z_j)
        v' = alpha_decay*v + i + i_offset ; z = v' > threshold ; reset_by_subtraction or reset_to_v_reset

    ``w_scale`` is the factor from float to int8 weights (float value = value / w_scale). ``graded=True``: a spike
    carries the membrane in float units, ``v' / w_scale`` (float32; the IR's graded LIF, e.g. EGRU-style value
    events), instead of 1; with ``payload_frac_bits = f`` as an int8 fixed-point payload
    ``clip(round(v' / w_scale * 2**f), -127, 127)``."""

    alpha_decay: np.ndarray
    threshold: np.ndarray
    i_offset: np.ndarray
    exc_decay: np.ndarray | None = None
    v_reset: np.ndarray | None = None
    reset: str = "zero"
    w_scale: float = 1.0
    readout: bool = False
    graded: bool = False
    payload_frac_bits: int | None = None
    kind: ClassVar[str] = "S2LIF"

    def __post_init__(self):
        self.alpha_decay, self.threshold = _arr(self.alpha_decay), _arr(self.threshold)
        self.i_offset = _arr(self.i_offset)
        if self.exc_decay is not None:
            self.exc_decay = _arr(self.exc_decay)
        self.v_reset = np.zeros_like(self.threshold) if self.v_reset is None else _arr(self.v_reset)
        self._check()

    def sends(self, received):
        """``"dense"`` for a readout population (its membrane is read), ``"graded"`` for a graded one, else
        ``"spikes"``."""
        return "dense" if self.readout else ("graded" if self.graded else "spikes")


@dataclass(eq=False, repr=False)
class EGRUCell(_Neuron):
    """Event-based GRU population run as a *custom program per processing element* (SpiNNaker2-style; Nazeer et
    al., arXiv 2312.09084): it holds its own input weights ``weight_ih`` [3H, I] and recurrent weights
    ``weight_hh`` [3H, H] (gates r, z, n; CSR rows when pruned), biases [3H] and the per-unit threshold
    ``threshold`` [H], and sends graded events ``y = e * c~`` (value events, only where a unit fires).

    Float semantics: exactly :func:`spikeseq.functional.egru.egru_step` (the equations are written there once;
    no zoneout, no dropout: the cell in evaluation), with the recurrent input the cell's own previous ``y``. The
    input ``x`` is the event vector of the node's predecessor (an :class:`Input`, usually one-hot tokens).

    Fixed point (SpiNNaker2, written by :mod:`spikeseq.graph.quantize`): ``weight_ih``/``weight_hh`` hold int8
    integers (per gate ``round(W_g * s_g)``) and ``ih_scale``/``hh_scale`` [3] the per-gate divisors of the integer
    products (``s_g``, times ``2**f`` of the payload that product reads): the gate inputs are
    ``(W_q x) / ih_scale[g] + b_i`` and ``(R_q y_q) / hh_scale[g] + b_h`` in float32 (the ARM Cortex-M4F's single
    precision); ``payload_frac_bits = f`` sends ``y_q = clip(round(y * 2**f), -127, 127)`` as an int8 payload
    (``None``: float32 payloads ``y``). The recurrent input is the cell's own payload, as received over the
    network."""

    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    threshold: np.ndarray
    ih_scale: np.ndarray | None = None
    hh_scale: np.ndarray | None = None
    payload_frac_bits: int | None = None
    kind: ClassVar[str] = "EGRUCell"
    graded: ClassVar[bool] = True

    def __post_init__(self):
        self.weight_ih, self.weight_hh = _arr(self.weight_ih), _arr(self.weight_hh)
        self.bias_ih, self.bias_hh, self.threshold = _arr(self.bias_ih), _arr(self.bias_hh), _arr(self.threshold)
        h = self.threshold.shape[0] if self.threshold.ndim == 1 else -1
        if (self.weight_ih.ndim != 2 or self.weight_hh.shape != (3 * h, h) or self.weight_ih.shape[0] != 3 * h
                or self.bias_ih.shape != (3 * h,) or self.bias_hh.shape != (3 * h,)):
            raise ShapeError(f"EGRUCell needs weight_ih [3H, I], weight_hh [3H, H], biases [3H] and threshold [H]; "
                             f"got {self.weight_ih.shape}, {self.weight_hh.shape}, {self.bias_ih.shape}, "
                             f"{self.bias_hh.shape}, {self.threshold.shape}")
        if not np.isfinite(self.threshold).all() or (self.threshold < 0).any() or (self.threshold >= 1).any():
            raise ParameterError("EGRUCell threshold must be finite and in [0, 1) (see functional.egru)")
        for name in ("ih_scale", "hh_scale"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, _arr(v))
                if getattr(self, name).shape != (3,) or not (getattr(self, name) > 0).all():
                    raise ParameterError(f"EGRUCell {name} must hold 3 positive per-gate factors (r, z, n)")
        if self.payload_frac_bits is not None and not 0 <= int(self.payload_frac_bits) <= 7:
            raise ParameterError(f"EGRUCell payload_frac_bits must be in 0..7 (int8 round(y * 2**f) with 0 < y < 1 "
                                 f"saturates from f = 8 on), got {self.payload_frac_bits}")

    @property
    def hidden(self) -> int:
        """Number of units ``H``."""
        return int(self.threshold.shape[0])

    @property
    def in_shape(self):
        """``(I,)``, the width of ``weight_ih``."""
        return (int(self.weight_ih.shape[1]),)

    @property
    def out_shape(self):
        """``(H,)``."""
        return (self.hidden,)

    def sends(self, received):
        """``"graded"``: value events ``y = e * c~``."""
        return "graded"


def synapse_kinds() -> tuple[type, ...]:
    """The node classes that are linear synapse maps (affine, linear, delays, convolutions, pooling)."""
    return (Affine, Linear, DelayAffine, Conv1d, Conv2d, SumPool2d, AvgPool2d)


def neuron_kinds() -> tuple[type, ...]:
    """The node classes that hold per-neuron state or thresholds (including the fixed-point target kinds)."""
    return (Threshold, I, IF, LI, LIF, CubaLI, CubaLIF, LMUMemory, LoihiCUBA, S2LIF, EGRUCell)


# ----------------------------------------------------------------------------------------------------------- graph
@dataclass(eq=False)
class Graph(Node):
    """Nodes + edges + ``dt`` (seconds, required). A Graph is itself a node (nested graphs, flattened by
    :meth:`flat`). Node names must not contain ``"."`` except where :meth:`flat` joins nested names."""

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    dt: float | None = None
    discretization: str = "exp"
    metadata: dict = field(default_factory=dict)
    kind: ClassVar[str] = "Graph"
    nir: ClassVar[str | None] = "NIRGraph"
    role: ClassVar[str] = "graph"

    def __post_init__(self):
        if self.dt is None:
            raise ParameterError(
                "a spikeseq Graph needs dt (the time step in seconds): NIR files do not carry one, so pass it "
                "explicitly, e.g. trace(model, dt=1e-3) or from_nir(path, dt=1e-3)"
            )
        if not (isinstance(self.dt, (int, float)) and self.dt > 0 and math.isfinite(self.dt)):
            raise ParameterError(f"dt must be a positive number of seconds, got {self.dt!r}")
        self.dt = float(self.dt)
        if self.discretization not in ("exp", "euler"):
            raise ParameterError(f"discretization must be 'exp' or 'euler', got {self.discretization!r}")
        self.edges = [(str(a), str(b)) for a, b in self.edges]
        for a, b in self.edges:
            for n in (a, b):
                if n not in self.nodes:
                    raise ShapeError(f"edge ({a!r}, {b!r}) names a node {n!r} that is not in the graph")

    # --- Node interface (for nesting)
    @property
    def in_shape(self):
        """Input shape of the first :class:`Input` node (``()`` when there is none)."""
        ins = self.inputs()
        return self.nodes[ins[0]].in_shape if ins else ()

    @property
    def out_shape(self):
        """Shape of the first :class:`Output` node (``()`` when there is none)."""
        outs = self.outputs()
        return self.nodes[outs[0]].in_shape if outs else ()

    def __repr__(self) -> str:
        lines = [f"Graph(dt={self.dt}, discretization={self.discretization!r}, {len(self.nodes)} nodes)"]
        lines += [f"  {k}: {v!r}" for k, v in self.nodes.items()]
        lines += [f"  {a} -> {b}" for a, b in self.edges]
        return "\n".join(lines)

    # --- structure
    def inputs(self) -> list[str]:
        """Names of the :class:`Input` nodes, in insertion order."""
        return [k for k, v in self.nodes.items() if isinstance(v, Input)]

    def outputs(self) -> list[str]:
        """Names of the :class:`Output` nodes, in insertion order."""
        return [k for k, v in self.nodes.items() if isinstance(v, Output)]

    def predecessors(self, name: str) -> list[str]:
        """Names of the nodes with an edge into ``name``."""
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        """Names of the nodes ``name`` has an edge to."""
        return [b for a, b in self.edges if a == name]

    def behind_flatten(self, name: str) -> str:
        """``name``, or, when it is a :class:`Flatten` node, the first node before it that is not one (a Flatten
        reshapes what one node sends; hardware writers and target mode look through it to the sender)."""
        while isinstance(self.nodes[name], Flatten):
            (name,) = self.predecessors(name)
        return name

    def items(self) -> Iterator[tuple[str, Node]]:
        """``(name, node)`` pairs in insertion order."""
        return iter(self.nodes.items())

    def decay(self, tau: np.ndarray) -> np.ndarray:
        """Per-step decay factor of a time constant under this graph's ``discretization``."""
        tau = np.asarray(tau, dtype=np.float64)
        if not np.isfinite(tau).all() or (tau <= 0).any():
            raise ParameterError(f"time constants must be finite and > 0 s, got min {tau.min()}")
        if self.discretization == "euler" and (tau < self.dt).any():
            raise ParameterError(f"forward Euler needs tau >= dt={self.dt}, got min tau {tau.min()}")
        return decay_factor(tau, self.dt, self.discretization)

    def flat(self) -> Graph:
        """The same graph with nested graphs inlined (names joined with ``"."``; inner Input/Output removed)."""
        if not any(isinstance(n, Graph) for n in self.nodes.values()):
            return self
        nodes: dict[str, Node] = {}
        edges: list[tuple[str, str]] = []
        entry: dict[str, list[str]] = {}
        exit_: dict[str, list[str]] = {}
        for name, node in self.nodes.items():
            if not isinstance(node, Graph):
                nodes[name] = node
                continue
            sub = node.flat()
            ins, outs = set(sub.inputs()), set(sub.outputs())
            for k, v in sub.nodes.items():
                if k not in ins and k not in outs:
                    nodes[f"{name}.{k}"] = v
            entry[name] = [f"{name}.{b}" for a, b in sub.edges if a in ins]
            exit_[name] = [f"{name}.{a}" for a, b in sub.edges if b in outs]
            edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub.edges if a not in ins and b not in outs]
        given = self.metadata.get("recurrent_edges")
        rec = None if given is None else set(map(tuple, given))
        flat_rec = [] if rec is None else [(f"{name}.{a}", f"{name}.{b}") for name, node in self.nodes.items()
                                            if isinstance(node, Graph) and node.metadata.get("recurrent_edges")
                                            for a, b in node.metadata["recurrent_edges"]]
        for a, b in self.edges:
            for s in exit_.get(a, [a]):
                for d in entry.get(b, [b]):
                    edges.append((s, d))
                    if rec is not None and (a, b) in rec:
                        flat_rec.append((s, d))
        meta = dict(self.metadata)
        if rec is not None:
            meta["recurrent_edges"] = flat_rec
        return Graph(nodes, edges, dt=self.dt, discretization=self.discretization, metadata=meta)

    def schedule(self, latency: str = "nir") -> tuple[list[str], set[tuple[str, str]]]:
        """Evaluation order and the set of *delayed* edges (read the source's previous-step output).

        ``latency="nir"``: the edges that close a cycle (found by depth-first search from the inputs, in node
        order) are delayed; everything else is same-step. ``latency="hop"``: every edge leaving a synapse node is
        delayed (one step per synaptic hop, Loihi / SpiNNaker2); a cycle without a synapse is an error.
        """
        g = self
        if latency == "nir":
            delayed = g.recurrent_edges()
        elif latency == "hop":
            delayed = {(a, b) for a, b in g.edges if g.nodes[a].role == "synapse"}
        else:
            raise ParameterError(f"latency must be 'nir' or 'hop', got {latency!r}")
        order = g._toposort([e for e in g.edges if e not in delayed])
        return order, delayed

    def recurrent_edges(self) -> set[tuple[str, str]]:
        """Edges that read the previous step's output: ``metadata["recurrent_edges"]`` when given (tracers set it;
        needed when several cycles share nodes), else the edges closing a cycle in a depth-first search."""
        given = self.metadata.get("recurrent_edges")
        if given is not None:
            edges = {(str(a), str(b)) for a, b in given}
            missing = edges - set(self.edges)
            if missing:
                raise ShapeError(f"metadata['recurrent_edges'] names edges that are not in the graph: {missing}")
            return edges
        return self._back_edges()

    def _back_edges(self) -> set[tuple[str, str]]:
        succ: dict[str, list[str]] = {k: [] for k in self.nodes}
        for a, b in self.edges:
            succ[a].append(b)
        state: dict[str, int] = {}
        back: set[tuple[str, str]] = set()
        roots = self.inputs() + [k for k in self.nodes if not self.predecessors(k)] + list(self.nodes)
        for root in roots:
            if root in state:
                continue
            stack = [(root, iter(succ[root]))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
        return back

    def _toposort(self, edges: list[tuple[str, str]]) -> list[str]:
        indeg = {k: 0 for k in self.nodes}
        succ: dict[str, list[str]] = {k: [] for k in self.nodes}
        for a, b in edges:
            indeg[b] += 1
            succ[a].append(b)
        ready = [k for k in self.nodes if indeg[k] == 0]
        order = []
        while ready:
            k = ready.pop(0)
            order.append(k)
            for b in succ[k]:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
        if len(order) != len(self.nodes):
            stuck = sorted(k for k in self.nodes if k not in order)
            raise ExportError(
                f"the graph has a cycle without a synapse node (through {stuck}); a recurrent loop must pass "
                "through a weight node (Linear/Affine) so that it has one step of latency"
            )
        return order

    def payloads(self, latency: str = "nir", inputs: dict[str, Payload] | None = None) -> dict[str, Payload]:
        """What each node sends (inputs first, then in evaluation order; cycles see their non-delayed inputs).
        ``inputs`` overrides the payload declared by Input nodes."""
        order, _ = self.schedule(latency)
        out: dict[str, Payload] = {}
        for k in order:
            node = self.nodes[k]
            if inputs and k in inputs:
                out[k] = inputs[k]
                continue
            recv = [out[a] for a in self.predecessors(k) if a in out]
            rank = {"spikes": 0, "graded": 1, "dense": 2}
            received: Payload = max(recv, key=rank.__getitem__) if recv else "dense"
            out[k] = node.sends(received)
        return out

    def check_finite(self) -> None:
        """:class:`~spikeseq.errors.NonFiniteError` naming the node and field when a parameter holds NaN, or when a
        weight, bias or matrix field holds +-Inf (an infinite threshold or time constant is a valid "never fires" /
        "no leak"). The interpreter would otherwise run a NaN weight as a silent neuron (``v > NaN`` is false)."""
        for name, node in self.nodes.items():
            for f in fields(node):
                value = getattr(node, f.name)
                if isinstance(value, Graph):
                    value.check_finite()
                    continue
                if not isinstance(value, np.ndarray | float) or isinstance(value, bool):
                    continue
                arr = np.asarray(value)
                if not np.issubdtype(arr.dtype, np.floating):
                    continue
                if np.isnan(arr).any():
                    raise NonFiniteError(f"node {name!r} ({node.kind}): {f.name} holds NaN; the model's parameters "
                                         "must be finite (retrain or fix the checkpoint)")
                if _FINITE_ONLY.search(f.name) and np.isinf(arr).any():
                    raise NonFiniteError(f"node {name!r} ({node.kind}): {f.name} holds Inf; weights and biases "
                                         "must be finite")

    def check_shapes(self) -> None:
        """Every edge joins equal sizes (NIR requires equal shapes; spikeseq allows a reshape between equal
        sizes only through Flatten, so shapes must match exactly)."""
        for a, b in self.edges:
            sa, sb = self.nodes[a].out_shape, self.nodes[b].in_shape
            if tuple(sa) != tuple(sb):
                raise ShapeError(f"edge {a} -> {b}: {a} sends shape {tuple(sa)} but {b} expects {tuple(sb)}")
