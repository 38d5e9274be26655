"""What every algorithm is: a gradient estimator plus an optimiser, behind one ``step``.

An algorithm module defines a subclass of :class:`Algorithm` and registers it with :func:`register`
under the name used in the config. ``gradient`` returns, for every parameter, the quantity to *descend*
(BP: dL/dtheta; IL: minus the local Hebbian update); ``step`` hands it to the optimiser.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..models import Net, Parameterisation

Tensor = torch.Tensor

__all__ = ["Algorithm", "ALGORITHMS", "register", "make_algorithm", "display_name", "AlgorithmError"]


class AlgorithmError(ValueError):
    """An unknown algorithm, or a hyper-parameter it does not take."""


class Algorithm:
    name: ClassVar[str]
    label: ClassVar[str] = ""  # display name in figures (defaults to ``name``)
    parameterisation: ClassVar[Parameterisation] = "post"
    optimiser: ClassVar[str] = "sgd"  # "sgd" | "adam" | "none" (the update is applied as returned, lr 1)
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, net: Net, lr: float, hparams: dict[str, Any] | None = None) -> None:
        hp = dict(self.defaults)
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
            self.opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=self.opt_lr())
        else:
            self.opt = torch.optim.SGD(params, lr=self.opt_lr())

    def opt_lr(self) -> float:
        """The optimiser's step size (the swept ``lr`` unless the algorithm says otherwise)."""
        return 1.0 if self.optimiser == "none" else self.lr

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def step(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        """One update on a batch; ``target`` is one-hot labels (classification) or the input (autoencoder).
        Returns the gradient estimate that was handed to the optimiser."""
        grads = self.gradient(net, x, target)
        for p, g in zip(net.params, grads):
            p.grad = g
        self.opt.step()
        return grads


ALGORITHMS: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    ALGORITHMS[cls.name] = cls
    return cls


def display_name(name: str) -> str:
    cls = ALGORITHMS.get(name)
    return (cls.label or cls.name) if cls is not None else name


def make_algorithm(name: str, net: Net, lr: float, hparams: dict[str, Any] | None = None) -> Algorithm:
    if name not in ALGORITHMS:
        raise AlgorithmError(f"unknown algorithm '{name}'; known: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name](net, lr, hparams)
