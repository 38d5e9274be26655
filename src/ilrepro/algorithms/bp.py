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

    def native_gradient(self, net: Net, x: Tensor, target: Tensor, lr: float | None = None,
                        keep_gradient: bool = True) -> list[Tensor] | None:
        return native.bp_gradient(net, x, target, lr, keep=keep_gradient)  # one C++ call for a chain of linear layers

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        fast = self.native_gradient(net, x, target)
        return bp_gradient(net, x, target) if fast is None else fast


@register
class BPAdam(BPSGD):
    name = "bp_adam"
    optimiser = "adam"
