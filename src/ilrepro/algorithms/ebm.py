"""Energy-based models at the infinitesimal inference limit (Millidge et al. 2022): PC-Nudge, EqProp, CHL.

Each returns, like BP, the quantity to descend, rescaled so that it tends to the loss gradient:

* ``pc_nudge`` -- predictive coding with the output loss weighted by lam (the target recomputed every
  step as p + lam (y - p), see :func:`~ilrepro.algorithms.il.soft_clamp`), on the shared inference loop;
  the local Hebbian update divided by lam. -> feedforward BP as lam -> 0. ``form: scaled`` (default)
  runs the loop on the scaled deviations (h - h_ff) / lam, exact in float32; ``direct`` on h itself.
* ``eqprop`` -- equilibrium propagation on the Hopfield energy of :mod:`ilrepro.hopfield`: free phase,
  nudged phase(s) with E + beta * loss, update (dE/dtheta(x^beta) - dE/dtheta(x*)) / beta (one-sided),
  (dE/dtheta(x^beta) - dE/dtheta(x^-beta)) / 2 beta (symmetric) or one-sided with a random sign.
  -> recurrent BP (the loss gradient at the free fixed point) as beta -> 0.
* ``chl`` -- contrastive Hebbian learning: the output hard-clamped to the label, feedback gamma, update
  (dE/dtheta(clamped) - dE/dtheta(free)) / gamma^L, i.e. per-layer learning rates gamma^-(L-1-l) on the
  Hebbian rule. Within O(gamma) of recurrent BP of the gamma-network; -> the gradient of the gamma = 0
  network as gamma -> 0.

The reference both are compared with (``reference_gradient``, ``track_bp_cosine``) is BP *of the same
function*: recurrent BP at the Hopfield net's own free fixed point. That is feedforward BP of the MLP with
the same weights only where the free state is the feedforward pass (ReLU or identity units at gamma = 0);
for tanh or sigmoid units it is another model (x_l = rho'(x_l) a_l, not rho(a_l)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from .. import native
from ..energy import InferenceConfig, PCState, descend, infer, weight_directions
from ..hopfield import HopfieldConfig, free_output, initial_state, param_gradient, recurrent_bp, relax
from ..models import ACTIVATIONS, Net
from .base import Algorithm, AlgorithmError, Range, Tensor, register
from .il import soft_clamp

__all__ = ["PCNudge", "EqProp", "CHL", "pc_nudge_gradient", "infer_scaled", "eqprop_gradient", "chl_gradient", "Estimator", "Form"]

Estimator = Literal["one_sided", "symmetric", "random"]
ESTIMATORS = ("one_sided", "symmetric", "random")
Form = Literal["scaled", "direct"]
FORMS = ("scaled", "direct")


def pc_nudge_gradient(net: Net, x: Tensor, y: Tensor, lam: float, cfg: InferenceConfig, form: Form = "scaled") -> list[Tensor]:
    """PC with output weight lam after ``cfg.T`` inference steps: minus the local Hebbian update / lam.
    ``form``: inference on the activities (``direct``) or on their scaled deviations from the
    feedforward pass (``scaled``, :func:`infer_scaled`): the same update, but in float32 the direct
    form's hidden errors are O(lam) differences of O(1) numbers and lose their digits."""
    if form == "direct":
        state = infer(net, x, soft_clamp(y, lam), cfg)
        return [-d / lam for d in weight_directions(net, state)]
    if form != "scaled":
        raise ValueError(f"unknown PC-Nudge form '{form}'; known: {', '.join(FORMS)}")
    return [d.neg_() for d in weight_directions(net, infer_scaled(net, x, y, lam, cfg))]  # errors already / lam


def scaled_unfit(net: Net) -> str:
    """Why the scaled form cannot run on ``net`` (its layers' increments are written out for plain
    chains of linear and conv layers only), or ""."""
    return "" if net.local_vjp else f"model '{net.meta.get('type', type(net).__name__)}' is not a chain of linear or conv layers"


def infer_scaled(net: Net, x: Tensor, y: Tensor, lam: float, cfg: InferenceConfig) -> PCState:
    """PC-Nudge's inference on u_l = (h_l - hff_l) / lam, the deviations from the feedforward pass hff,
    scaled. Dividing the step h_l <- h_l - dt e_l + dt J_l^T e_{l+1} by lam gives the same step on u
    with every error divided by lam (the loop of :func:`~ilrepro.energy.descend`):

        e_l / lam = u_l - [f_{l-1}(hff_{l-1} + lam u_{l-1}) - f_{l-1}(hff_{l-1})] / lam    (u_0 = 0: the input)
        e_L / lam = y - link(mu_L)     (the soft target lam y + (1 - lam) link(mu_L), minus link(mu_L), / lam)

    since hff_l = f_{l-1}(hff_{l-1}). The bracket is :meth:`~ilrepro.models.Net.increment`: the linear
    part and the activations' divided differences, never a difference of two O(1) values, so in float32
    each term keeps its relative precision however small lam is. Returns the state at h = hff + lam u
    whose ``errors`` are e / lam: :func:`~ilrepro.energy.weight_directions` of it is the update / lam."""
    if scaled_unfit(net):
        raise ValueError(f"PC-Nudge's scaled form: {scaled_unfit(net)}; use form: direct")
    L = net.n_layers
    with torch.no_grad():
        hff, pre = [x], []  # the feedforward pass and every layer's pre-activation A_l(in_act(hff_l))
        for l in range(L):
            pre.append(net.affine(l, net.presynaptic(l, hff[l])))
            hff.append(ACTIVATIONS[net.layers[l].out_act](pre[l]))
        y = y.to(hff[-1].dtype)

    def state(u: list[Tensor], feedback: bool) -> tuple[PCState, list[Tensor]]:
        h = [x] + [hff[l] + lam * u[l] for l in range(1, L)]
        inc = [net.increment(l, hff[l], pre[l], u[l], lam) for l in range(1, L)]  # layers 1..L-1
        mu = [hff[1]] + [m for _, m in inc]
        p = net.link(mu[-1])
        errs = [u[l] if l == 1 else u[l] - inc[l - 2][0] for l in range(1, L)] + [y - p]  # e_1 / lam .. e_L / lam
        fb = [net.linear_vjp(l, h[l], mu[l], errs[l], "input")[0] for l in range(1, L)] if feedback else []
        return PCState(h, mu, lam * y + (1.0 - lam) * p, errs), fb

    return descend([torch.zeros_like(v) for v in hff[:L]], state, cfg)


def eqprop_gradient(
    net: Net,
    x: Tensor,
    y: Tensor,
    cfg: HopfieldConfig,
    beta: float,
    estimator: Estimator = "one_sided",
    sign: float = 1.0,
    free: list[Tensor] | None = None,
) -> list[Tensor]:
    """The EqProp estimate of d loss(x*) / d theta. ``sign`` (+-1) is the nudge's sign for the
    ``random`` estimator (drawn by the caller); ``free`` reuses a free equilibrium already computed."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown EqProp estimator '{estimator}'; known: {', '.join(ESTIMATORS)}")
    if beta <= 0:
        raise ValueError(f"EqProp nudge beta must be > 0, got {beta}")
    T2 = cfg.T if cfg.T_nudge is None else cfg.T_nudge
    if free is None:
        free = relax(net, initial_state(net, x), cfg.T, cfg.dt, cfg.gamma)

    def nudged(b: float) -> list[Tensor]:
        xs = relax(net, free, T2, cfg.dt, cfg.gamma, y=y, beta=b)
        return param_gradient(net, xs, cfg.gamma)

    if estimator == "symmetric":
        plus, minus = nudged(beta), nudged(-beta)
        return [(p - m) / (2 * beta) for p, m in zip(plus, minus)]
    b = beta * (sign if estimator == "random" else 1.0)
    g0 = param_gradient(net, free, cfg.gamma)
    return [(p - q) / b for p, q in zip(nudged(b), g0)]


def chl_gradient(net: Net, x: Tensor, y: Tensor, cfg: HopfieldConfig) -> list[Tensor]:
    """CHL with feedback ``cfg.gamma``: clamped-phase minus free-phase dE/dtheta, rescaled by gamma^-L."""
    T2 = cfg.T if cfg.T_nudge is None else cfg.T_nudge
    free = relax(net, initial_state(net, x), cfg.T, cfg.dt, cfg.gamma)
    clamped = relax(net, [*free[:-1], y.to(free[-1].dtype)], T2, cfg.dt, cfg.gamma, clamp_output=True)
    return [c - f for c, f in zip(param_gradient(net, clamped, cfg.gamma), param_gradient(net, free, cfg.gamma))]


@register
class PCNudge(Algorithm):
    name = "pc_nudge"
    parameterisation = "post"
    # form: inference on the scaled deviations from the feedforward pass (exact in float32) or on the
    # activities themselves, as published (the float32 run then drifts from BP); see pc_nudge_gradient
    defaults = {"lam": 1e-4, "T": 50, "dt": 0.3, "form": "scaled"}
    bounds = {"lam": Range(0.0, open_lo=True), "dt": Range(0.0, open_lo=True)}
    choices = {"form": FORMS}

    def __init__(self, net: Net, lr: float, hparams: dict | None = None, member_lrs: Sequence[float] | None = None) -> None:
        super().__init__(net, lr, hparams, member_lrs)
        if self.hp["form"] == "scaled" and scaled_unfit(net):
            raise AlgorithmError(f"pc_nudge: hyper-parameter 'form': scaled needs a chain of linear or conv layers ({scaled_unfit(net)}); use direct", "form")

    @classmethod
    def has_native(cls, hparams: dict | None = None) -> bool:
        """The fast path runs the direct form only."""
        return super().has_native(hparams) and {**cls.defaults, **(hparams or {})}["form"] == "direct"

    def native_gradient(self, net: Net, x: Tensor, target: Tensor, lr: float | None = None,
                        keep_gradient: bool = True) -> list[Tensor] | None:
        """:meth:`gradient` in one C++ call (and with ``lr`` the SGD step), or None where it cannot run
        (the scaled form has no native twin)."""
        if self.hp["form"] != "direct":
            return None
        dt, lam = float(self.hp["dt"]), float(self.hp["lam"])
        return native.il_directions(net, x, target, ("soft", lam, 0.0), int(self.hp["T"]), dt, dt, negate=True, divisor=lam, lr=lr, exact=True,
                                     keep=keep_gradient)

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        fast = self.native_gradient(net, x, target)
        if fast is not None:  # the same update in one C++ call (a test checks the weights agree)
            return fast
        dt, lam = float(self.hp["dt"]), float(self.hp["lam"])
        return pc_nudge_gradient(net, x, target, lam, InferenceConfig(int(self.hp["T"]), dt, dt), self.hp["form"])


class _Hopfield(Algorithm):
    """Shared by EqProp and CHL: the Hopfield network's prediction is its free equilibrium, and the
    gradient they approximate is that prediction's: recurrent BP at the free fixed point."""

    parameterisation = "post"
    supported_models = ("mlp",)
    vectorisable = False  # the relaxation's gradients come from torch.autograd.grad

    def config(self) -> HopfieldConfig:
        return HopfieldConfig(int(self.hp["T"]), float(self.hp["dt"]), float(self.hp.get("gamma", 1.0)), int(self.hp["T_nudge"]))

    def logits(self, net: Net, x: Tensor) -> Tensor:
        return free_output(net, x, self.config())

    def reference_gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        """Recurrent BP: d loss / d theta at the free fixed point of this network (its own feedback gamma),
        i.e. BP of the function :meth:`logits` computes, not feedforward BP of the MLP."""
        return recurrent_bp(net, x, target, self.config())


@register
class EqProp(_Hopfield):
    name = "eqprop"
    defaults = {"beta": 0.1, "estimator": "symmetric", "T": 40, "T_nudge": 20, "dt": 0.5}
    bounds = {"beta": Range(0.0, open_lo=True), "dt": Range(0.0, open_lo=True)}
    choices = {"estimator": tuple(ESTIMATORS)}

    def __init__(self, net: Net, lr: float, hparams: dict | None = None) -> None:
        super().__init__(net, lr, hparams)
        self.gen = torch.Generator().manual_seed(0)  # the random-sign estimator's signs

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        sign = 1.0 if torch.rand((), generator=self.gen) < 0.5 else -1.0
        return eqprop_gradient(net, x, target, self.config(), float(self.hp["beta"]), self.hp["estimator"], sign)


@register
class CHL(_Hopfield):
    name = "chl"
    defaults = {"gamma": 0.1, "T": 40, "T_nudge": 20, "dt": 0.5}
    bounds = {"gamma": Range(0.0, 1.0, open_lo=True), "dt": Range(0.0, open_lo=True)}  # gamma: the feedback

    def __init__(self, net: Net, lr: float, hparams: dict | None = None) -> None:
        super().__init__(net, lr, hparams)
        if net.output_loss != "mse":
            raise AlgorithmError("chl: the hard clamp x_L = y is the squared-error output; set model.output_loss: mse")

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        return chl_gradient(net, x, target, self.config())
