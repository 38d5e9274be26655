"""What every algorithm is: a gradient estimator plus an optimiser, behind one ``step``.

An algorithm module defines a subclass of :class:`Algorithm` and registers it with :func:`register`
under the name used in the config. ``gradient`` returns, for every parameter, the quantity to *descend*
(BP: dL/dtheta; IL: minus the local Hebbian update); ``step`` hands it to the optimiser.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Sequence

import torch

from .. import autodiff
from ..models import Net, Parameterisation
from ..optim import SGD, Adam, Optimiser

Tensor = torch.Tensor

__all__ = ["Algorithm", "ALGORITHMS", "register", "make_algorithm", "AlgorithmError", "Range", "bp_gradient"]


def bp_gradient(net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
    """dL/dtheta of the batch-mean loss, by autograd through the feedforward pass: what BP descends,
    and the reference every algorithm's gradient estimate is compared with."""
    return autodiff.grad(lambda ps: net.loss(net.logits(x, ps), target), net.params)


class AlgorithmError(ValueError):
    """An unknown algorithm, or a hyper-parameter it does not take or of the wrong type or range;
    ``key`` names the hyper-parameter where there is one."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Range:
    """The values a numeric hyper-parameter may take: from ``lo`` to ``hi`` (None: unbounded), each end
    closed unless said open."""

    lo: float | None = 0.0
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False

    def __contains__(self, v: float) -> bool:
        above = self.lo is None or (v > self.lo if self.open_lo else v >= self.lo)
        below = self.hi is None or (v < self.hi if self.open_hi else v <= self.hi)
        return above and below

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{'(' if self.open_lo or self.lo is None else '['}{lo}, {hi}{')' if self.open_hi or self.hi is None else ']'}"


def _check_hparam(algo: str, key: str, value: Any, default: Any, kind: type | None, bounds: Range, choices: tuple[str, ...] | None) -> None:
    """A hyper-parameter has its default's type (an int where the default is an int, a number where it
    is a float, ...) and lies in its range; raises :class:`AlgorithmError` naming it."""
    kind = type(default) if default is not None else kind
    if value is None and default is None:
        return
    where = f"{algo}: hyper-parameter '{key}'"
    if kind is bool:
        if not isinstance(value, bool):
            raise AlgorithmError(f"{where} must be true or false, got {value!r}", key)
    elif kind is str:
        if not isinstance(value, str) or (choices is not None and value not in choices):
            what = f"one of {', '.join(choices)}" if choices is not None else "a string"
            raise AlgorithmError(f"{where} must be {what}, got {value!r}", key)
    elif kind in (int, float):
        ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float)) and math.isfinite(value)
        if isinstance(value, bool) or not ok_type:
            what = "an integer" if kind is int else "a finite number"
            raise AlgorithmError(f"{where} must be {what} in {bounds}, got {value!r}", key)
        if value not in bounds:
            raise AlgorithmError(f"{where} must be in {bounds}, got {value!r}", key)


class Algorithm:
    name: ClassVar[str]
    parameterisation: ClassVar[Parameterisation] = "post"
    optimiser: ClassVar[str] = "sgd"  # "sgd" | "adam" | "none" (the update is applied as returned, lr 1)
    defaults: ClassVar[dict[str, Any]] = {}
    # each hyper-parameter has its default's type; a number lies in [0, inf) unless ``bounds`` says
    # otherwise, a string is one of ``choices``; a default of None (null) takes ``types``' type
    bounds: ClassVar[dict[str, Range]] = {}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    types: ClassVar[dict[str, type]] = {}
    # whether ``gradient`` runs under torch.func.vmap, for several models (seeds) at once
    # (see :mod:`ilrepro.ensemble`); a test checks every algorithm that says so
    vectorisable: ClassVar[bool] = True
    # whether ``gradient`` reads ``self.lr`` (IL-prox: the implicit-SGD target's alpha): a stacked job
    # then hands each member's rate into the vmapped step as a tensor (:meth:`lr_as`)
    lr_in_gradient: ClassVar[bool] = False
    # feedforward passes the native step makes in Python before its one C++ call (BP-prox: its soft target)
    native_prelude_passes: ClassVar[int] = 0

    @classmethod
    def hparam_defaults(cls) -> dict[str, Any]:
        """Every hyper-parameter the algorithm takes: its own, plus ``momentum`` (heavy-ball, default 0)
        for the SGD optimiser."""
        common = {"momentum": 0.0} if cls.optimiser == "sgd" else {}
        return {**common, **cls.defaults}

    @classmethod
    def hparam_range(cls, key: str) -> Range:
        return {"momentum": Range(0.0, 1.0, open_hi=True), **cls.bounds}.get(key, Range())

    def __init__(self, net: Net, lr: float, hparams: dict[str, Any] | None = None, member_lrs: Sequence[float] | None = None) -> None:
        """``member_lrs``: ``net`` is stacked models (:mod:`ilrepro.ensemble`), one swept rate per member
        (the optimiser's step size for each; ``lr`` is then only the default for :meth:`lr_as`)."""
        hp = self.hparam_defaults()
        for k, v in (hparams or {}).items():
            if k not in hp:
                raise AlgorithmError(
                    f"algorithm '{self.name}' has no hyper-parameter '{k}'; it takes: {', '.join(sorted(hp)) or 'none'}"
                )
            _check_hparam(self.name, k, v, hp[k], self.types.get(k), self.hparam_range(k), self.choices.get(k))
            hp[k] = v
        self.hp = hp
        self.lr = float(lr)
        params = net.params
        rates: float | list[float] = self.opt_lr() if member_lrs is None else [self.opt_lr(float(v)) for v in member_lrs]
        if self.optimiser == "adam":
            self.opt: Optimiser = Adam(params, lr=rates)
        else:
            self.opt = SGD(params, lr=rates, momentum=float(hp.get("momentum", 0.0)))

    def opt_lr(self, lr: float | None = None) -> float:
        """The optimiser's step size for the swept rate ``lr`` (default: this algorithm's): that rate
        unless the algorithm says otherwise."""
        return 1.0 if self.optimiser == "none" else (self.lr if lr is None else lr)

    @contextlib.contextmanager
    def lr_as(self, lr: float | Tensor) -> Iterator[None]:
        """Inside, ``self.lr`` is ``lr``: in a stacked step, the member's own rate (a tensor under vmap)
        for an algorithm whose gradient reads it (:attr:`lr_in_gradient`)."""
        saved = self.lr
        self.lr = lr  # type: ignore[assignment]  # a float outside vmap, a batched 0-dim tensor inside
        try:
            yield
        finally:
            self.lr = saved

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def logits(self, net: Net, x: Tensor) -> Tensor:
        """The network's output for evaluation (the feedforward pass unless the model's prediction is,
        e.g., the free equilibrium of an energy-based network)."""
        return net.logits(x)

    def reference_gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        """The exact gradient this algorithm approximates (``track_bp_cosine``): feedforward BP unless
        the algorithm computes another function (EqProp, CHL: recurrent BP at their free equilibrium)."""
        return bp_gradient(net, x, target)

    @classmethod
    def has_native(cls, hparams: dict[str, Any] | None = None) -> bool:
        """Whether the algorithm with these hyper-parameters has a native step (:meth:`native_gradient`)
        at all; whether it runs for a given net is :func:`ilrepro.native.serves`."""
        return cls.native_gradient is not Algorithm.native_gradient

    def native_gradient(self, net: Net, x: Tensor, target: Tensor, lr: float | None = None,
                        keep_gradient: bool = True) -> list[Tensor] | None:
        """:meth:`gradient` in one C++ call (the native fast path, :mod:`ilrepro.native`) and, with
        ``lr``, the plain SGD step too (then ``keep_gradient`` false: [] instead of the gradient, which
        is not written out); None where the algorithm has none or it cannot run."""
        return None

    def fused_step(self, net: Net, x: Tensor, target: Tensor, keep_gradient: bool = True) -> list[Tensor] | None:
        """The gradient and a plain SGD step in one native call where the optimiser is plain SGD,
        returning the gradient (or [] without ``keep_gradient``); None otherwise (then ``step`` runs the two parts)."""
        lr = self.plain_sgd_lr(net)  # (optimiser "none" is SGD with step 1)
        return None if lr is None else self.native_gradient(net, x, target, lr, keep_gradient)

    def plain_sgd_lr(self, net: Net) -> float | None:
        """The step size when the optimiser is plain SGD (no momentum) on ``net``'s parameters, else None."""
        opt = self.opt
        ok = isinstance(opt, SGD) and opt.momentum == 0 and len(opt.params) == len(net.params)
        return opt.lr if ok and all(p is q for p, q in zip(opt.params, net.params)) else None

    def step(self, net: Net, x: Tensor, target: Tensor, keep_gradient: bool = True) -> list[Tensor]:
        """One update on a batch; ``target`` is one-hot labels (classification) or the input (autoencoder).
        Returns the gradient estimate that was handed to the optimiser; ``keep_gradient`` false: the
        caller does not read it, and the fused native step (plain SGD) returns [] without writing it out
        (at batch 1 the step then streams each weight once instead of three times; the same weights)."""
        fused = self.fused_step(net, x, target, keep_gradient)
        if fused is not None:
            return fused
        grads = self.gradient(net, x, target)
        self.apply(net, grads)
        return grads

    def apply(self, net: Net, grads: list[Tensor]) -> None:
        """Hand a gradient estimate to the optimiser (``net`` must be the net it was built on)."""
        for p, g in zip(net.params, grads, strict=True):
            p.grad = g
        self.opt.step()


ALGORITHMS: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    ALGORITHMS[cls.name] = cls
    return cls


def make_algorithm(
    name: str, net: Net, lr: float, hparams: dict[str, Any] | None = None, member_lrs: Sequence[float] | None = None
) -> Algorithm:
    """The algorithm on ``net``; ``member_lrs``: on stacked models, one swept rate per member."""
    if name not in ALGORITHMS:
        raise AlgorithmError(f"unknown algorithm '{name}'; known: {', '.join(sorted(ALGORITHMS))}")
    if member_lrs is None:
        return ALGORITHMS[name](net, lr, hparams)
    return ALGORITHMS[name](net, lr, hparams, member_lrs)
