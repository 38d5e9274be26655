"""Backprop: autograd on the batch-mean loss, with SGD or Adam."""

from __future__ import annotations

from .. import native
from ..models import Net
from .base import Algorithm, Tensor, bp_gradient, register

__all__ = ["BPSGD", "BPAdam"]


@register
class BPSGD(Algorithm):
    name = "bp_sgd"
    parameterisation = "post"

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        fast = native.bp_gradient(net, x, target)  # one C++ call for a chain of linear layers
        return bp_gradient(net, x, target) if fast is None else fast

    def fused_step(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor] | None:
        lr = self.plain_sgd_lr(net)
        return None if lr is None else native.bp_gradient(net, x, target, lr)


@register
class BPAdam(BPSGD):
    name = "bp_adam"
    optimiser = "adam"
