"""The IL-prox family of Alonso et al. 2022 (IL as implicit SGD), the BP-prox control, and the exact
implicit-SGD reference — all on the pre-activation parameterisation  mu_{l+1} = W_l phi(h_l) + b_l.

IL-prox: during inference the output target is the closed-form implicit-SGD output, recomputed at every
step,  h_L = p + kappa (y - p),  kappa = alpha n / (1 + alpha n),  n = mean_b ||a_{L-1}||^2 + 1 + eps
(p the prediction, a_{L-1} the last layer's presynaptic activity). The weight update has no step size of
its own:  dW_l = mean_b[e_{l+1} a_l^T] / n_l,  db_l = mean_b[e_{l+1}] / n_l,  n_l = mean_b||a_l||^2 + 1 + eps.
alpha (the config's ``lr``) enters only through kappa, which saturates at 1: the stability mechanism.

Following the paper's mathematics rather than the authors' code. Their IL-prox, read from that code, differs
from ours in two places: inside the loop n sums over the batch instead of averaging (so kappa ~ 1 at B = 64;
ours averages), and the first target omits the +1 (ours has it). Their IL-prox does update biases, as ours
does, and its output error is not halved (the x0.5 on the output error is in their standard IL only: see
:mod:`ilrepro.algorithms.il`). Their BP-SGD and BP-prox never update biases; ours do (``bp_sgd`` and
:class:`BPProx` below), so the controls train the same parameters as the IL variants.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import native
from ..energy import InferenceConfig, PCState, TargetFn, infer, weight_directions
from ..models import ACTIVATIONS, Net
from ..runtime import cosine
from .base import Algorithm, Range, Tensor, bp_gradient, register

__all__ = ["ILProx", "ILProxFast", "ILProxAdam", "BPProx", "ImplicitSGD", "prox_target", "activity_norm", "il_prox_update", "implicit_sgd_solve",
           "softplus_net", "implicit_sgd_error"]


def activity_norm(a: Tensor) -> Tensor:
    """mean_b ||a||^2 — for convolutional activity (B, C, H, W), the mean over batch and positions of
    the channel-wise squared norm (Alonso et al.'s n_l for conv layers)."""
    if a.dim() == 4:
        return (a * a).sum(1).mean()
    a = a.flatten(1)
    return (a * a).sum(1).mean()  # a * a: the same float as a ** 2, one cheaper kernel


def _consts(like: Tensor, *values: float) -> list[Tensor]:
    """Python floats as 0-dim tensors of ``like``'s dtype: the same arithmetic, without a scalar-to-tensor
    conversion in every operation (which dominates at batch 1)."""
    return [torch.tensor(v, dtype=like.dtype, device=like.device) for v in values]


def prox_kappa(net: Net, h: list[Tensor], alpha: float | Tensor, eps: float | Tensor, one: float | Tensor = 1.0) -> Tensor:
    last = net.n_layers - 1
    n = activity_norm(net.presynaptic(last, h[last])) + one + eps
    an = alpha * n
    return an / (one + an)


def prox_target(y: Tensor, alpha: float | Tensor, eps: float) -> TargetFn:
    """The implicit-SGD output target h_L = p + kappa (y - p), recomputed from the current state.
    ``alpha``: a float, or a 0-dim tensor (a stacked job's per-member rate under vmap)."""
    eps_t, one = _consts(y, eps, 1.0)
    alpha_t = alpha.to(y.dtype) if isinstance(alpha, Tensor) else _consts(y, alpha)[0]

    def target(net: Net, h: list[Tensor], logits: Tensor) -> Tensor:
        p = net.link(logits)
        return p + prox_kappa(net, h, alpha_t, eps_t, one) * (y - p)

    return target


def il_prox_update(net: Net, state: PCState, eps: float) -> list[Tensor]:
    """IL-prox's weight update at an inference state: each layer's local Hebbian direction divided by
    n_l = mean_b ||a_l||^2 + 1 + eps (no step size of its own)."""
    dirs = weight_directions(net, state)
    out = []
    for l in range(net.n_layers):
        n_l = activity_norm(net.presynaptic(l, state.h[l])) + 1.0 + eps
        out += [dirs[2 * l] / n_l, dirs[2 * l + 1] / n_l]
    return out


@register
class ILProx(Algorithm):
    name = "il_prox"
    parameterisation = "pre"
    # n_l is per layer; an RNN shares its weights across steps (the paper defines no RNN form)
    supported_models = ("mlp", "autoencoder", "cnn")
    optimiser = "none"
    lr_in_gradient = True  # alpha enters the target
    defaults = {"T": 25, "gamma_bot": 0.015, "gamma_top": 0.015, "eps": 0.0}

    def inference_config(self) -> InferenceConfig:
        return InferenceConfig(int(self.hp["T"]), float(self.hp["gamma_bot"]), float(self.hp["gamma_top"]))

    def target_fn(self, y: Tensor) -> TargetFn:
        return prox_target(y, self.lr, float(self.hp["eps"]))

    def native_gradient(self, net: Net, x: Tensor, target: Tensor, lr: float | None = None,
                        keep_gradient: bool = True) -> list[Tensor] | None:
        """:meth:`gradient` in one C++ call (and with ``lr`` the SGD step), or None where it cannot run."""
        c, eps = self.inference_config(), float(self.hp["eps"])
        return native.il_directions(net, x, target, ("prox", self.lr, eps), c.T, c.gamma_top, c.gamma_bot, negate=True, prox_eps=eps, lr=lr,
                                     keep=keep_gradient)


    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        fast = self.native_gradient(net, x, target)
        if fast is not None:  # the same update in one C++ call (a test checks the weights agree)
            return fast
        c, eps = self.inference_config(), float(self.hp["eps"])
        state = infer(net, x, self.target_fn(target), c)
        return [-d for d in il_prox_update(net, state, eps)]


@register
class ILProxFast(ILProx):
    name = "il_prox_fast"
    defaults = {"T": 12, "gamma_bot": 0.025, "gamma_top": 0.0, "eps": 0.0}


@register
class ILProxAdam(ILProx):
    """The normalised local gradient of IL-prox fed to Adam (``adam_lr``); ``lr`` is the target's alpha."""

    name = "il_prox_adam"
    optimiser = "adam"
    defaults = {"T": 20, "gamma_bot": 0.02, "gamma_top": 0.015, "eps": 5.0, "adam_lr": 3e-5}
    bounds = {"adam_lr": Range(0.0, open_lo=True)}

    def opt_lr(self, lr: float | None = None) -> float:
        return float(self.hp["adam_lr"])


@register
class BPProx(Algorithm):
    """Control: a feedforward pass, the same kappa-mixed soft target, backprop of its cross-entropy, and
    each layer's gradient divided by (mean_b ||a_l||^2 + eps) — as the sheet states it (no +1)."""

    name = "bp_prox"
    parameterisation = "pre"
    supported_models = ("mlp", "autoencoder", "cnn")
    optimiser = "none"
    lr_in_gradient = True  # alpha enters the soft target
    native_prelude_passes = 1  # the soft target's feedforward pass, before the native backprop
    defaults = {"eps": 0.0}

    def _soft_target(self, net: Net, x: Tensor, target: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The kappa-mixed soft target of a feedforward pass, and each layer's n_l = mean_b ||a_l||^2 + eps."""
        eps = float(self.hp["eps"])
        with torch.no_grad():
            h = net.forward(x)
            soft = prox_target(target, self.lr, eps)(net, h, h[-1])
            return soft, [activity_norm(net.presynaptic(l, h[l])) + eps for l in range(net.n_layers)]

    def native_gradient(self, net: Net, x: Tensor, target: Tensor, lr: float | None = None,
                        keep_gradient: bool = True) -> list[Tensor] | None:
        """:meth:`gradient` with backprop and the division in one C++ call (and with ``lr`` the SGD step),
        or None where it cannot run (then without the soft target's forward pass: :meth:`gradient` makes it)."""
        if not native.ready(net, x, target):  # the soft target has the one-hot target's shape and dtype
            return None
        soft, norms = self._soft_target(net, x, target)
        return native.bp_gradient(net, x, soft, lr, norms=norms, keep=keep_gradient)

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        soft, norms = self._soft_target(net, x, target)
        fast = native.bp_gradient(net, x, soft, norms=norms)
        if fast is not None:  # the same update in one C++ call (a test checks the weights agree)
            return fast
        grads = bp_gradient(net, x, soft)
        out = []
        for l in range(net.n_layers):
            out += [grads[2 * l] / norms[l], grads[2 * l + 1] / norms[l]]
        return out


def implicit_sgd_solve(
    net: Net, x: Tensor, target: Tensor, alpha: float, tol: float, max_iter: int = 500, ftol: float = 1e-12
) -> tuple[list[Tensor], float]:
    """argmin_phi L(phi) + ||phi - theta||^2 / (2 alpha), solved by L-BFGS (strong Wolfe line search)
    until the proximal objective's gradient has max-norm <= tol, or an iteration changes the objective
    (or moves phi) by less than ``ftol`` (0: only when it makes no progress at all), or max_iter.
    Returns (phi, final gradient 2-norm).

    For smooth activations the stationarity condition grad L(phi) + (phi - theta)/alpha = 0 is met to
    ``tol``. With ReLU the minimiser can sit on a kink, where only a subgradient vanishes: the solver then
    stops on the objective and the returned residual says how far the gradient is from 0 — which is not
    how far phi is from the minimiser: :func:`implicit_sgd_error` measures that."""
    theta = [p.detach() for p in net.params]
    phi = [p.clone().requires_grad_(True) for p in theta]
    opt = torch.optim.LBFGS(phi, lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=tol,
                            tolerance_change=ftol, history_size=50, line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        opt.zero_grad()
        prox = sum(((p - t) ** 2).sum() for p, t in zip(phi, theta)) / (2.0 * alpha)
        value = net.loss(net.logits(x, phi), target) + prox
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(objective)
        objective()
    gnorm = float(torch.sqrt(sum((p.grad**2).sum() for p in phi)))
    return [p.detach() for p in phi], gnorm


@dataclass
class _SoftplusNet(Net):
    """A chain whose ReLUs are softplus(beta h) / beta: the smoothed twin of a ReLU net (same layers, same
    parameters), whose proximal problem a gradient-based solver can solve to any tolerance."""

    beta: float = 1e4

    def _act(self, name: str) -> Callable[[Tensor], Tensor]:
        return (lambda h: F.softplus(h, beta=self.beta)) if name == "relu" else ACTIVATIONS[name]

    def presynaptic(self, l: int, h: Tensor) -> Tensor:
        spec = self.layers[l]
        a = self._act(spec.in_act)(h)
        return a.flatten(1) if spec.flatten_input else a

    def layer(self, l: int, h: Tensor, params: list[Tensor] | None = None, x: Tensor | None = None) -> Tensor:
        return self._act(self.layers[l].out_act)(self.affine(l, self.presynaptic(l, h), params))


def softplus_net(net: Net, beta: float) -> Net:
    """``net`` with every ReLU replaced by softplus(beta h) / beta (within log 2 / beta of ReLU); a chain
    (:class:`~ilrepro.models.Net` itself) only."""
    if type(net) is not Net:
        raise ValueError(f"softplus_net: a chain of layers only, not a {type(net).__name__}")
    if not beta > 0:
        raise ValueError(f"softplus_net: beta must be > 0, got {beta}")
    return _SoftplusNet(net.layers, [p.detach() for p in net.params], net.output_loss, dict(net.meta), float(beta))


def implicit_sgd_error(
    net: Net, x: Tensor, target: Tensor, alpha: float, phi: list[Tensor], beta: float = 1e4,
    tol: float = 1e-9, max_iter: int = 5000,
) -> dict[str, float]:
    """How far a solve ``phi`` of the implicit-SGD step of a ReLU ``net`` is from the step of the smoothed
    problem (ReLU -> softplus(beta h)/beta, :func:`softplus_net`), solved to ``tol`` from theta.

    The residual :func:`implicit_sgd_solve` returns does not measure accuracy on a ReLU net: at a kink only
    a subgradient vanishes, so an accurate solution can have a large gradient. The smoothed problem has a
    gradient that vanishes at its minimiser, which for a sharp beta lies next to the ReLU problem's.
    Returns ``solver_rel_dist`` = ||d - d_s|| / ||d_s|| and ``solver_cos`` = cos(d, d_s) of the updates
    d = phi - theta, d_s = phi_s - theta, and ``smooth_residual``, the smoothed solve's gradient norm
    (small: the reference itself converged)."""
    theta = [p.detach() for p in net.params]
    # from theta, as the solve measured: the proximal problem of a ReLU net need not be convex at a large
    # alpha, and a solve started elsewhere (e.g. continuation from a smoother beta) can find another minimum
    ref, res = implicit_sgd_solve(softplus_net(net, beta), x, target, alpha, tol=tol, max_iter=max_iter, ftol=0.0)
    d = [p - t for p, t in zip(phi, theta)]
    d_s = [p - t for p, t in zip(ref, theta)]
    diff = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(d, d_s)))
    size = math.sqrt(sum(float((b**2).sum()) for b in d_s))
    return {"solver_rel_dist": diff / size if size > 0 else float("nan"), "solver_cos": cosine(d, d_s), "smooth_residual": res}


@register
class ImplicitSGD(Algorithm):
    """The implicit-SGD reference: an exact proximal step, solved to a stated tolerance (``tol`` on the
    norm of the proximal objective's gradient) rather than a fixed number of steps."""

    name = "implicit_sgd"
    vectorisable = False  # L-BFGS stops on data-dependent conditions
    parameterisation = "pre"
    optimiser = "none"
    defaults = {"tol": 1e-6, "max_iter": 500, "ftol": 1e-12}
    bounds = {"max_iter": Range(1)}

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        phi, self.last_residual = implicit_sgd_solve(
            net, x, target, self.lr, float(self.hp["tol"]), int(self.hp["max_iter"]), float(self.hp["ftol"])
        )
        return [p - q for p, q in zip(net.params, phi)]
