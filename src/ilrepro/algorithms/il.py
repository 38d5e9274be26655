"""Standard inference learning (IL-SGD, IL-Adam) on the shared inference loop.

Output clamped to the label (IL-SGD), or soft-clamped  h_L = n y + (1 - n) link(mu_L)  (IL-Adam);
after T inference steps each layer descends its local loss, i.e. the weights move along the local
Hebbian directions of :func:`ilrepro.energy.weight_directions`.

What we do not copy from the authors' standard IL (their PC.py, read from the code): the extra x0.5 on the
output error. In their IL-SGD it halves the output error that inference propagates down, so it halves the
hidden layers' updates; ours follows the paper's energy (no factor), which is why our IL-SGD learns faster
early in training than theirs at the same learning rate. Their local losses are 0.5 * sum of squares / B
(a batch mean), as ours.
"""

from __future__ import annotations

from .. import native
from ..energy import InferenceConfig, TargetFn, infer, weight_directions
from ..models import Net
from .base import Algorithm, Range, Tensor, register

__all__ = ["ILSGD", "ILAdam", "hard_clamp", "soft_clamp"]


def hard_clamp(y: Tensor) -> TargetFn:
    return lambda net, h, logits: y


def soft_clamp(y: Tensor, n: float) -> TargetFn:
    return lambda net, h, logits: n * y + (1.0 - n) * net.link(logits)


@register
class ILSGD(Algorithm):
    name = "il_sgd"
    parameterisation = "post"
    defaults = {"T": 25, "gamma_bot": 0.02, "gamma_top": 0.015}

    def inference_config(self) -> InferenceConfig:
        return InferenceConfig(int(self.hp["T"]), float(self.hp["gamma_bot"]), float(self.hp["gamma_top"]))

    def target_fn(self, y: Tensor) -> TargetFn:
        return hard_clamp(y)

    def native_target(self) -> tuple[str, float, float]:
        """:meth:`target_fn` as the native fast path names it (keep the two in step)."""
        return ("hard", 0.0, 0.0)

    def native_gradient(self, net: Net, x: Tensor, target: Tensor, lr: float | None = None,
                        keep_gradient: bool = True) -> list[Tensor] | None:
        """:meth:`gradient` in one C++ call (and with ``lr`` the SGD step), or None where it cannot run."""
        c = self.inference_config()
        return native.il_directions(net, x, target, self.native_target(), c.T, c.gamma_top, c.gamma_bot, negate=True, lr=lr,
                                     exact=self.native_target()[0] == "soft", keep=keep_gradient)


    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        fast = self.native_gradient(net, x, target)
        if fast is not None:  # the same update in one C++ call (a test checks the weights agree)
            return fast
        state = infer(net, x, self.target_fn(target), self.inference_config())
        return [d.neg_() for d in weight_directions(net, state)]  # fresh tensors, negated in place


@register
class ILAdam(ILSGD):
    name = "il_adam"
    optimiser = "adam"
    defaults = {"T": 20, "gamma_bot": 0.02, "gamma_top": 0.01, "n": 0.95}
    bounds = {"n": Range(0.0, 1.0)}  # the soft clamp's weight on the label

    def target_fn(self, y: Tensor) -> TargetFn:
        return soft_clamp(y, float(self.hp["n"]))

    def native_target(self) -> tuple[str, float, float]:
        return ("soft", float(self.hp["n"]), 0.0)
