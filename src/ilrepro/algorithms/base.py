"""What every algorithm is: a gradient estimator plus an optimiser, behind one ``step``.

An algorithm module defines a subclass of :class:`Algorithm` and registers it with :func:`register`
under the name used in the config. ``gradient`` returns, for every parameter, the quantity to *descend*
(BP: dL/dtheta; IL: minus the local Hebbian update); ``step`` hands it to the optimiser.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..models import Net, Parameterisation
from ..optim import SGD, Adam, Optimiser

Tensor = torch.Tensor

__all__ = ["Algorithm", "ALGORITHMS", "register", "make_algorithm", "AlgorithmError"]


class AlgorithmError(ValueError):
    """An unknown algorithm, or a hyper-parameter it does not take."""


class Algorithm:
    name: ClassVar[str]
    parameterisation: ClassVar[Parameterisation] = "post"
    optimiser: ClassVar[str] = "sgd"  # "sgd" | "adam" | "none" (the update is applied as returned, lr 1)
    defaults: ClassVar[dict[str, Any]] = {}
    # whether ``gradient`` runs under torch.func.vmap, for several models (seeds) at once
    # (see :mod:`ilrepro.ensemble`); a test checks every algorithm that says so
    vectorisable: ClassVar[bool] = True

    @classmethod
    def hparam_defaults(cls) -> dict[str, Any]:
        """Every hyper-parameter the algorithm takes: its own, plus ``momentum`` (heavy-ball, default 0)
        for the SGD optimiser."""
        common = {"momentum": 0.0} if cls.optimiser == "sgd" else {}
        return {**common, **cls.defaults}

    def __init__(self, net: Net, lr: float, hparams: dict[str, Any] | None = None) -> None:
        hp = self.hparam_defaults()
        for k, v in (hparams or {}).items():
            if k not in hp:
                raise AlgorithmError(
                    f"algorithm '{self.name}' has no hyper-parameter '{k}'; it takes: {', '.join(sorted(hp)) or 'none'}"
                )
            hp[k] = v
        self.hp = hp
        self.lr = float(lr)
        params = net.params
        if self.optimiser == "adam":
            self.opt: Optimiser = Adam(params, lr=self.opt_lr())
        else:
            momentum = float(hp.get("momentum", 0.0))
            if not 0.0 <= momentum < 1.0:
                raise AlgorithmError(f"algorithm '{self.name}': momentum must be in [0, 1), got {momentum}")
            self.opt = SGD(params, lr=self.opt_lr(), momentum=momentum)

    def opt_lr(self) -> float:
        """The optimiser's step size (the swept ``lr`` unless the algorithm says otherwise)."""
        return 1.0 if self.optimiser == "none" else self.lr

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def logits(self, net: Net, x: Tensor) -> Tensor:
        """The network's output for evaluation (the feedforward pass unless the model's prediction is,
        e.g., the free equilibrium of an energy-based network)."""
        return net.logits(x)

    def reference_gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        """The exact gradient this algorithm approximates (``track_bp_cosine``): feedforward BP unless
        the algorithm says otherwise (recurrent BP at the free equilibrium for EqProp)."""
        from .bp import bp_gradient

        return bp_gradient(net, x, target)

    def fused_step(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor] | None:
        """The gradient and a plain SGD step in one call (the native fast path, :mod:`ilrepro.native`),
        returning the gradient; None where the algorithm has none (then ``step`` runs the two parts)."""
        return None

    def plain_sgd_lr(self, net: Net) -> float | None:
        """The step size when the optimiser is plain SGD (no momentum) on ``net``'s parameters, else None."""
        opt = self.opt
        ok = isinstance(opt, SGD) and opt.momentum == 0 and len(opt.params) == len(net.params)
        return opt.lr if ok and all(p is q for p, q in zip(opt.params, net.params)) else None

    def step(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        """One update on a batch; ``target`` is one-hot labels (classification) or the input (autoencoder).
        Returns the gradient estimate that was handed to the optimiser."""
        fused = self.fused_step(net, x, target)
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


def make_algorithm(name: str, net: Net, lr: float, hparams: dict[str, Any] | None = None) -> Algorithm:
    if name not in ALGORITHMS:
        raise AlgorithmError(f"unknown algorithm '{name}'; known: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name](net, lr, hparams)
