"""Backprop: autograd on the batch-mean loss, with SGD or Adam."""

from __future__ import annotations

from ..models import Net
from .base import Algorithm, Tensor, bp_gradient, register

__all__ = ["BPSGD", "BPAdam"]


@register
class BPSGD(Algorithm):
    name = "bp_sgd"
    parameterisation = "post"

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        return bp_gradient(net, x, target)


@register
class BPAdam(BPSGD):
    name = "bp_adam"
    optimiser = "adam"
