"""Datasets for training: the config's ``[data]`` section -> in-memory tensors split into train / val / test.

Sources:
- any name known to ``spikeseq.data.registry`` (``load(name, split, **kwargs)``); the result may be an object
  with ``.x`` ``[N, T, ...]`` and ``.y`` ``[N]`` (e.g. HAR windows), an ``(x, y)`` pair, or a map-style dataset
  of ``(x [T, ...], y)`` items;
- ``"tensor_file"``: ``path = "file.pt"`` holding ``{"train": {"x", "y"}, "test": {"x", "y"}, "classes": [...]}``
  with ``x`` batch-first ``[N, T, ...]`` (for your own data and for tests).

Inputs are kept batch-first ``[N, T, ...]`` in memory and handed to models time-first ``[T, B, ...]``. The
validation split is a seeded random ``val_fraction`` of the training split. A ``[data]`` value written as the
string ``"train.seed"`` is replaced by the run's seed (a generated task that follows ``--seed``). With
``cv_folds`` / ``cv_fold`` the test split is one class-stratified fold of the training split instead of the
dataset's own test split (:func:`cv_split`).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from spikeseq.errors import ConfigError, DataError
from spikeseq.progress import progress

TENSOR_FILE = "tensor_file"
#: a ``[data]`` value that stands for the run's seed
SEED_REF = "train.seed"
#: The seed of the cross-validation folds (:func:`cv_split`): fixed, so that every model and every run seed is
#: tested on the same folds and paired comparisons are possible.
CV_SPLIT_SEED = 0


@dataclass
class Split:
    """One split in memory: inputs ``x [N, T, ...]`` float32 (batch-first) and labels ``y [N]`` int64; ``groups``
    ``[N]`` int64, where the dataset says it, the source each sample was cut from (a HAR window's subject), which
    cross-validation keeps in one fold (:func:`cv_folds_of`), and ``group_kind`` its name."""

    x: torch.Tensor  # [N, T, ...] float32
    y: torch.Tensor  # [N] int64
    groups: torch.Tensor | None = None  # [N] int64 or None
    group_kind: str | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, idx: torch.Tensor) -> Split:
        """The samples at ``idx``."""
        return Split(self.x[idx], self.y[idx], None if self.groups is None else self.groups[idx], self.group_kind)


@dataclass
class Normalizer:
    """Per-channel (last axis) standardisation with training statistics."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, x: torch.Tensor) -> Normalizer:
        """Mean and std (clamped to >= 1e-8) over every axis but the last of the training inputs ``x``."""
        flat = x.reshape(-1, x.shape[-1]).double()
        return cls(flat.mean(0).float(), flat.std(0).clamp_min(1e-8).float())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` over the last axis."""
        return (x - self.mean) / self.std

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"mean", "std"}`` tensors for a checkpoint."""
        return {"mean": self.mean, "std": self.std}


@dataclass
class Prepared:
    """The data of a run: train / val / test splits, classes, the fitted normaliser (if any), provenance ``info``."""

    train: Split
    val: Split
    test: Split
    n_classes: int
    classes: list[str]
    normalizer: Normalizer | None = None
    info: dict[str, Any] = field(default_factory=dict)


def known_datasets() -> list[str]:
    """Names accepted as ``data.name``: ``"tensor_file"`` and every dataset of :mod:`spikeseq.data.registry`."""
    from spikeseq.data import registry

    return sorted({TENSOR_FILE, *registry.names()})


def _to_split(obj: Any, what: str) -> tuple[Split, list[str] | None]:
    classes = None
    for attr in ("classes", "class_names", "labels_names"):
        v = getattr(obj, attr, None)
        if isinstance(v, list | tuple) and v and all(isinstance(c, str) for c in v):
            classes = list(v)
            break
    if hasattr(obj, "x") and hasattr(obj, "y"):
        x, y = obj.x, obj.y
    elif isinstance(obj, tuple) and len(obj) == 2:
        x, y = obj
    elif hasattr(obj, "__len__") and hasattr(obj, "__getitem__"):
        xs, ys = [], []
        for i in progress(range(len(obj)), total=len(obj), desc=f"loading {what}"):
            xi, yi = obj[i][:2]
            xs.append(torch.as_tensor(xi))
            ys.append(int(yi))
        if not xs:
            raise DataError(f"{what} is empty")
        x, y = torch.stack(xs), torch.tensor(ys)
    else:
        raise DataError(f"{what}: cannot read a dataset of type {type(obj).__name__} (expected .x/.y, (x, y) or "
                        "a map-style dataset)")
    x = torch.as_tensor(x).float()
    y = torch.as_tensor(y).long()
    if x.dim() < 2 or x.shape[0] != y.shape[0]:
        raise DataError(f"{what}: expected x [N, T, ...] and y [N], got {tuple(x.shape)} and {tuple(y.shape)}")
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1)
    if bool(bad.any()):
        raise DataError(f"{what}: sample {int(bad.nonzero()[0])} holds NaN or Inf ({int(bad.sum())} samples); inputs "
                        "must be finite: fix or drop those samples")
    groups, kind = groups_of(obj, len(y))
    return Split(x, y, groups, kind), classes


#: Attributes of a loaded dataset that name each sample's source, as ``(attribute, kind)``: HAR windows carry their
#: ``subject`` (:class:`spikeseq.data.har_common.HARWindows`), and overlapping windows of one recording must not be
#: split between training and test folds.
GROUP_ATTRIBUTES = (("groups", "group"), ("subject", "subject"))


def groups_of(obj: Any, n: int) -> tuple[torch.Tensor | None, str | None]:
    """The dataset's per-sample sources (the first of :data:`GROUP_ATTRIBUTES` that gives one whole number per sample,
    none negative: HARWindows marks an unknown subject -1), or ``(None, None)``."""
    for attr, kind in GROUP_ATTRIBUTES:
        v = getattr(obj, attr, None)
        if v is None or isinstance(v, str):
            continue
        try:
            g = torch.as_tensor(v)
        except (TypeError, ValueError, RuntimeError):
            continue
        if g.dim() != 1 or g.shape[0] != n or g.dtype == torch.bool:
            continue
        if g.is_floating_point():  # ids read as floats (a CSV column): whole numbers only
            if not bool((torch.isfinite(g) & (g == torch.round(g))).all()):
                continue
        g = g.long()
        if n and int(g.min()) < 0:  # some sources unknown: try the next attribute
            continue
        return g, kind
    return None, None


def _load_tensor_file(kwargs: dict[str, Any]) -> tuple[Split, Split, list[str] | None]:
    unknown = set(kwargs) - {"path"}
    if "path" not in kwargs or unknown:
        raise ConfigError(f"data {TENSOR_FILE!r} takes exactly one key, path = \"file.pt\"; got {sorted(kwargs)}")
    try:
        blob = torch.load(kwargs["path"], map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"data file not found: {kwargs['path']}") from None
    except Exception as e:
        raise DataError(f"{kwargs['path']}: unreadable tensor file ({type(e).__name__}: {e})") from None
    try:
        train, _ = _to_split((blob["train"]["x"], blob["train"]["y"]), "train")
        test, _ = _to_split((blob["test"]["x"], blob["test"]["y"]), "test")
    except (KeyError, TypeError) as e:
        raise DataError(f"{kwargs['path']}: expected {{'train': {{'x', 'y'}}, 'test': {{'x', 'y'}}}} ({e})") from None
    return train, test, blob.get("classes")


def _load_registry(name: str, kwargs: dict[str, Any]) -> tuple[Split, Split, list[str] | None]:
    from spikeseq.data import registry

    if name not in registry.names():
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(known_datasets())}")
    loader = getattr(registry, "get", None)
    sig_target = loader(name) if callable(loader) else None
    if sig_target is not None:
        _check_kwargs(sig_target, kwargs, f"dataset {name!r}", "[data]")
    try:
        train, classes = _to_split(registry.load(name, "train", **kwargs), f"{name} train")
        test, _ = _to_split(registry.load(name, "test", **kwargs), f"{name} test")
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ConfigError(f"dataset {name!r}: {e}; check the keys of [data]") from None
        raise
    return train, test, classes


def _check_kwargs(fn: Any, kwargs: dict[str, Any], what: str, section: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(f"{what} has no option {key!r} (in {section}); its options: {', '.join(accepted)}")


def prepare(data_cfg, seed: int) -> Prepared:
    """Load, split (train / val / test), optionally normalise, as configured."""
    name, kwargs = data_cfg.name, {k: (int(seed) if v == SEED_REF else v) for k, v in data_cfg.kwargs.items()}
    if name == TENSOR_FILE:
        train, test, classes = _load_tensor_file(kwargs)
    else:
        train, test, classes = _load_registry(name, kwargs)
    if train.x.shape[1:] != test.x.shape[1:]:
        raise DataError(f"{name}: train samples {tuple(train.x.shape[1:])} and test samples "
                        f"{tuple(test.x.shape[1:])} differ in shape")
    n_classes = int(max(train.y.max(), test.y.max())) + 1
    if classes is None or len(classes) < n_classes:
        classes = [str(i) for i in range(n_classes)]
    n_classes = max(n_classes, len(classes))
    cv_info: dict[str, Any] | None = None
    if data_cfg.cv_folds is not None or getattr(data_cfg, "cv_fold", None) is not None:
        from spikeseq.train.config import check_folds  # a DataConfig built in Python is not checked on load
        check_folds(data_cfg, "[data]")
        train, test = cv_split(train, data_cfg.cv_folds, data_cfg.cv_fold)
        cv_info = {"folds": data_cfg.cv_folds, "fold": data_cfg.cv_fold, "split_seed": CV_SPLIT_SEED,
                   "test": "a fold of the training split (the dataset's own test split is not used)",
                   "grouped_by": test.group_kind,
                   "test_groups": None if test.groups is None else torch.unique(test.groups).tolist()}
    g = torch.Generator().manual_seed(int(seed))
    n_val = round(data_cfg.val_fraction * len(train))
    if train.groups is not None and n_val > 0:
        in_val = holdout_groups(train.groups, n_val, g)
        rest = torch.nonzero(~in_val).flatten()
        rest = rest[torch.randperm(len(rest), generator=g)]   # shuffled, as below: max_train takes a random subset
        val, train = train.take(torch.nonzero(in_val).flatten()), train.take(rest)
        if len(val) == 0:
            warnings.warn(f"{name}: data.val_fraction = {data_cfg.val_fraction} but the training split holds one "
                          f"{train.group_kind} only, and validation takes whole {train.group_kind}s: no validation "
                          "split (set data.val_fraction = 0 to say so)", stacklevel=2)
        val_info = {"val_grouped_by": train.group_kind, "val_groups": torch.unique(val.groups).tolist()}
    else:
        perm = torch.randperm(len(train), generator=g)
        val, train = train.take(perm[:n_val]), train.take(perm[n_val:])
        val_info = {}
    if data_cfg.max_train is not None:
        train = train.take(torch.arange(min(len(train), data_cfg.max_train)))
    if data_cfg.max_test is not None:
        test = test.take(torch.arange(min(len(test), data_cfg.max_test)))
    norm = None
    if data_cfg.normalize:
        norm = Normalizer.fit(train.x)
        train, val, test = (Split(norm(s.x), s.y) for s in (train, val, test))
    if data_cfg.input_scale is not None:
        train, val, test = (Split(torch.round(s.x * data_cfg.input_scale), s.y) for s in (train, val, test))
    if data_cfg.pad_end:
        train, val, test = (Split(pad_end(s.x, data_cfg.pad_end), s.y) for s in (train, val, test))
    info = {"n_train": len(train), "n_val": len(val), "n_test": len(test), "sample_shape": list(train.x.shape[1:]),
            "n_classes": n_classes, **val_info}
    if cv_info is not None:
        info["cv"] = cv_info
    return Prepared(train, val, test, n_classes, list(classes), norm, info)


def holdout_groups(groups: torch.Tensor, n_val: int, generator: torch.Generator) -> torch.Tensor:
    """Which samples (bool ``[N]``) the validation split takes when samples come from sources ``groups [N]``: whole
    groups in a random order (``generator``, the run's seed) until at least ``n_val`` samples are held out, at
    least one group and never every group (one is left to train on)."""
    ids, inverse, sizes = torch.unique(groups, return_inverse=True, return_counts=True)
    order = torch.randperm(len(ids), generator=generator)
    taken = torch.zeros(len(ids), dtype=torch.bool)
    held = 0
    for i in order[: max(len(ids) - 1, 0)].tolist():
        if held >= n_val:
            break
        taken[i] = True
        held += int(sizes[i])
    return taken[inverse]


def cv_folds_of(y: torch.Tensor, folds: int, groups: torch.Tensor | None = None) -> torch.Tensor:
    """The fold (``0..folds-1``) of every sample with labels ``y [N]``.

    Without ``groups``: within each class, in class order, a random order (:data:`CV_SPLIT_SEED`) dealt out to the
    folds in turn, so every fold holds each class's share up to one sample and the folds' sizes differ by at most
    one. With ``groups [N]`` (e.g. a HAR window's subject): whole groups go to one fold each, so no fold is tested
    on a source it was trained on (overlapping windows of one recording would otherwise leak between them); the
    groups, largest first (ties in a random order of :data:`CV_SPLIT_SEED`), each to the fold with the fewest
    samples so far (the lowest index on a tie). The folds are then balanced in size as far as the groups allow,
    not stratified by class."""
    g = torch.Generator().manual_seed(CV_SPLIT_SEED)
    if groups is not None:
        ids, inverse, sizes = torch.unique(groups, return_inverse=True, return_counts=True)
        shuffled = torch.randperm(len(ids), generator=g)
        order = sorted(shuffled.tolist(), key=lambda i: -int(sizes[i]))   # stable: the random order breaks ties
        filled = [0] * folds
        of_group = torch.empty(len(ids), dtype=torch.int64)
        for i in order:
            k = min(range(folds), key=lambda f: (filled[f], f))
            of_group[i] = k
            filled[k] += int(sizes[i])
        return of_group[inverse]
    order = torch.cat([idx[torch.randperm(len(idx), generator=g)]
                       for idx in (torch.nonzero(y == c).flatten() for c in torch.unique(y))])
    fold = torch.empty(len(y), dtype=torch.int64)
    fold[order] = torch.arange(len(y)) % folds
    return fold


def cv_split(train: Split, folds: int, fold: int) -> tuple[Split, Split]:
    """``(train without fold, fold)`` of :func:`cv_folds_of` (by ``train.groups`` where the dataset has them);
    raises when a fold would be empty."""
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (folds, fold)):
        raise ConfigError(f"cross-validation folds and fold must be integers, got folds = {folds!r}, fold = {fold!r}")
    if folds < 2 or not 0 <= fold < folds:
        raise ConfigError(f"cross-validation needs folds >= 2 and fold in 0..folds - 1, got folds = {folds}, "
                          f"fold = {fold}")
    if len(train) < folds:
        raise DataError(f"{folds}-fold cross-validation needs at least {folds} training samples, the training split "
                        f"has {len(train)}: use fewer folds (data.cv_folds)")
    if train.groups is not None:
        groups = torch.as_tensor(train.groups)
        if groups.shape != train.y.shape:
            raise DataError(f"cross-validation by {train.group_kind}: the training split needs one group per sample "
                            f"([{len(train)}]), got groups of shape {tuple(groups.shape)}")
        train = Split(train.x, train.y, groups, train.group_kind)
        n_groups = int(torch.unique(train.groups).numel())
        if n_groups < folds:
            raise DataError(f"{folds}-fold cross-validation keeps each {train.group_kind} in one fold, and the "
                            f"training split has {n_groups} {train.group_kind}s: use at most {n_groups} folds "
                            "(data.cv_folds)")
    of = cv_folds_of(train.y, folds, train.groups)
    return train.take(torch.nonzero(of != fold).flatten()), train.take(torch.nonzero(of == fold).flatten())


def pad_end(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Batch-first sequences ``[N, T, ...]`` with ``steps`` silent (zero) steps appended: ``[N, T + steps, ...]``
    (e.g. so that a readout also sees inputs delayed past the end of the recording)."""
    return torch.cat([x, x.new_zeros(x.shape[0], int(steps), *x.shape[2:])], dim=1)


def time_first(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, ...]`` -> ``[T, B, ...]`` (contiguous)."""
    return x.transpose(0, 1).contiguous()
