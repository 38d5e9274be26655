"""Several models of one configuration (its seeds) trained together.

Vectorised: the members' parameters are stacked along a new leading dimension and one algorithm step
runs for all of them at once, ``torch.func.vmap`` over the algorithm's own ``gradient`` (the same code
as for one model, so the same arithmetic); the optimiser then updates the stacked tensors, which is the
same element-wise update as one optimiser per member. Each member reads its own mini-batches, so a member
trains exactly as it would alone (a test checks equality with one-by-one training). At batch 1 a step is
dominated by per-operation overhead, which the members now share.

Algorithms whose step cannot run under ``vmap`` (``Algorithm.vectorisable = False``: an iterative solver
with data-dependent stopping, a random schedule, an autograd call inside the step) train their members
one after another, in the same process.

Members are exposed as ordinary :class:`Net` objects whose parameters are *views* of the stacked
tensors: evaluation, diagnostics and reference gradients use them unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from . import autodiff
from .algorithms import ALGORITHMS, make_algorithm
from .models import Net

__all__ = ["Ensemble"]

Tensor = torch.Tensor


class Ensemble:
    """``nets``: the members (same architecture); ``vectorise``: stack them if the algorithm allows."""

    def __init__(self, nets: list[Net], algorithm: str, lr: float, hparams: dict[str, Any] | None = None, vectorise: bool = True) -> None:
        if not nets:
            raise ValueError("an ensemble needs at least one model")
        cls = ALGORITHMS.get(algorithm)
        self.vectorised = bool(vectorise and cls is not None and cls.vectorisable and len(nets) > 1)
        self.template = nets[0]
        if self.vectorised:
            stacked = [torch.stack(ps) for ps in zip(*(n.params for n in nets), strict=True)]
            self.stacked = dataclasses.replace(nets[0], params=stacked)
            self.algos = [make_algorithm(algorithm, self.stacked, lr, hparams)]
            self.members = [dataclasses.replace(nets[0], params=[p[k] for p in stacked]) for k in range(len(nets))]
            algo = self.algos[0]
            template = self.template

            def one(ps: tuple[Tensor, ...], x: Tensor, t: Tensor) -> list[Tensor]:
                return algo.gradient(dataclasses.replace(template, params=list(ps)), x, t)

            self._vgrad = torch.func.vmap(one)
        else:
            self.members = list(nets)
            self.algos = [make_algorithm(algorithm, n, lr, hparams) for n in nets]

    def __len__(self) -> int:
        return len(self.members)

    def algorithm(self, k: int):  # noqa: ANN201 - an Algorithm
        """The algorithm object that serves member k (its ``logits`` / ``reference_gradient`` read only
        the net they are given and the hyper-parameters)."""
        return self.algos[0] if self.vectorised else self.algos[k]

    def step(self, xs: list[Tensor], targets: list[Tensor], active: list[int]) -> dict[int, list[Tensor]]:
        """One update of every member in ``active`` on its own batch (``xs[k]``, ``targets[k]``); returns
        each one's gradient estimate. Vectorised, all members step (a diverged member's non-finite values
        stay in its own slice); else only the active ones."""
        if not self.vectorised:
            return {k: self.algos[k].step(self.members[k], xs[k], targets[k]) for k in active}
        with autodiff.vectorised():
            grads = self._vgrad(tuple(self.stacked.params), torch.stack(xs), torch.stack(targets))
        self.algos[0].apply(self.stacked, list(grads))
        return {k: [g[k] for g in grads] for k in active}
