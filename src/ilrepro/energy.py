"""The predictive-coding energy and the inference loop, written once for every IL variant.

Value nodes h_1..h_{L-1} are free; the input h_0 = x is clamped; the output node h_L is the *target*,
which each algorithm supplies through a ``TargetFn`` (hard clamp to the label, soft clamp, the implicit-SGD
target of IL-prox, ...), recomputed at every inference step from the current logits.

Errors:   e_l = h_l - mu_l  (hidden),        e_L = h_L - link(mu_L)  (output)
Step:     h_l <- h_l - gamma_top * e_l + gamma_bot * J_l^T e_{l+1},   J_l = d mu_{l+1} / d h_l
With gamma_top = gamma_bot this is gradient descent on  F = sum_l 1/2 ||e_l||^2 + loss(mu_L, h_L).

The feedback terms J_l^T e_{l+1} for all layers come from one vector-Jacobian product (autograd) per
step, and the weight update direction  -dF/dtheta_l = (d mu_{l+1}/d theta_l)^T e_{l+1}  from one more:
the local Hebbian rule of every layer, for linear and convolutional layers alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from . import autodiff
from .models import Net

__all__ = [
    "InferenceConfig",
    "PCState",
    "StateFn",
    "StepHook",
    "TargetFn",
    "pc_state",
    "infer",
    "descend",
    "infer_front",
    "graph_distances",
    "weight_directions",
    "layer_directions",
    "energy",
]

Tensor = torch.Tensor
# (net, activities h_0..h_{L-1} (detached), logits mu_L (detached)) -> output target h_L
TargetFn = Callable[[Net, list[Tensor], Tensor], Tensor]


@dataclass(frozen=True)
class InferenceConfig:
    T: int
    gamma_bot: float
    gamma_top: float

    def __post_init__(self) -> None:
        if self.T < 0:
            raise ValueError(f"inference steps T must be >= 0, got {self.T}")


@dataclass
class PCState:
    """A network state: activities h_0..h_{L-1}, predictions mu_1..mu_L, output target h_L,
    and errors e_1..e_L (all detached)."""

    h: list[Tensor]
    mu: list[Tensor]
    target: Tensor
    errors: list[Tensor]


def _errors(net: Net, h: list[Tensor], mu: list[Tensor], target: Tensor) -> list[Tensor]:
    hidden = [h[l] - mu[l - 1] for l in range(1, net.n_layers)]
    return hidden + [target - net.link(mu[-1])]


def pc_state(
    net: Net, h: list[Tensor], target_fn: TargetFn, feedback: bool = False, mu0: Tensor | None = None
) -> tuple[PCState, list[Tensor]]:
    """Predictions and errors at activities ``h`` (h_0..h_{L-1}); with ``feedback`` also the terms
    J_l^T e_{l+1} for the hidden layers l = 1..L-1 (vector-Jacobian products: written out for linear and conv
    layers, one autograd call otherwise). ``mu0``: the first layer's prediction, if already known (the
    input is clamped, so it does not change during inference)."""
    L = net.n_layers
    fast = net.local_vjp
    if not feedback or L == 1 or fast:
        with torch.no_grad():
            x = h[0]
            mu = [net.layer(l, h[l], x=x) for l in range(1, L)]
            mu.insert(0, mu0 if mu0 is not None else net.layer(0, x, x=x))
            target = target_fn(net, h, mu[-1])
            errs = _errors(net, h, mu, target)
            fb = [net.linear_vjp(l, h[l], mu[l], errs[l], "input")[0] for l in range(1, L)] if feedback else []
        return PCState(h, mu, target, errs), fb
    x = h[0]
    mu0 = mu0 if mu0 is not None else net.layer(0, x, x=x)
    found: dict[str, object] = {}

    def local_errors(mu_free: list[Tensor]) -> list[Tensor]:  # e_2..e_L, from the predictions
        found["mu"] = mu = [mu0, *mu_free]
        found["target"] = target = target_fn(net, h, mu[-1])
        found["errs"] = errs = _errors(net, h, mu, target)
        return errs[1:]

    _, fb = autodiff.vjp(lambda *hid: [net.layer(l, hid[l - 1], x=x) for l in range(1, L)], h[1:], local_errors)
    mu, target, errs = found["mu"], found["target"], found["errs"]
    return PCState(h, mu, target, errs), list(fb)


# called with (t, state at step t) before the step's update; t = 0 is the initial state
StepHook = Callable[[int, PCState], None]
# (coordinates z_0..z_{L-1} of the value nodes, whether the feedback is wanted) -> the state there and the
# feedback terms J_l^T e_{l+1} of the hidden layers, errors and feedback in the coordinates' units
StateFn = Callable[[list[Tensor], bool], tuple[PCState, list[Tensor]]]


def infer(
    net: Net,
    x: Tensor,
    target_fn: TargetFn,
    cfg: InferenceConfig,
    h: list[Tensor] | None = None,
    on_step: StepHook | None = None,
) -> PCState:
    """Run T steps of simultaneous inference from a feedforward initialisation (or from ``h``);
    returns the state at the final activities (t = T). ``on_step`` sees the state at every t = 0..T,
    for algorithms that read the network mid-inference (Z-IL's schedule, the papers' diagnostics)."""
    with torch.no_grad():
        h = net.forward(x)[:-1] if h is None else list(h)
        mu0 = net.layer(0, h[0], x=h[0])  # the input is clamped: its prediction is computed once
    return descend(h, lambda z, feedback: pc_state(net, z, target_fn, feedback=feedback, mu0=mu0), cfg, on_step)


def descend(z: list[Tensor], state_fn: StateFn, cfg: InferenceConfig, on_step: StepHook | None = None) -> PCState:
    """The inference loop, for any coordinates of the value nodes in which the step keeps its form:
    T steps  z_l <- z_l - gamma_top e_l + gamma_bot J_l^T e_{l+1}  (l >= 1; z_0, the clamped input's,
    is never moved), errors and feedback from ``state_fn`` at the current z. The activities themselves
    (z = h, :func:`infer`), or PC-Nudge's scaled deviations (h - h_ff) / lam, in which every term is the
    same step divided by lam (:func:`ilrepro.algorithms.ebm.infer_scaled`). Returns the state at t = T."""
    # One no-grad region for the whole loop (the autograd fallback of pc_state enables grad itself).
    with torch.no_grad():
        # the step sizes as 0-dim tensors of the activities' dtype: the same float32 product as with
        # Python floats, without a scalar-to-tensor conversion in every operation
        gt, gb = (torch.tensor(g, dtype=z[0].dtype, device=z[0].device) for g in (cfg.gamma_top, cfg.gamma_bot))
        for t in range(cfg.T):
            st, fb = state_fn(z, True)
            if on_step is not None:
                on_step(t, st)
            # z_l - gamma_top e_l + gamma_bot J^T e_{l+1}, the same operations in the same order as
            # written, but accumulated in place into fresh tensors (the state's own stay untouched)
            new = [z[0]]
            for l in range(1, len(z)):
                zl = z[l] - gt * st.errors[l - 1]
                new.append(zl.add_(fb[l - 1].mul_(gb)))
            z = new
        final = state_fn(z, False)[0]
    if on_step is not None:
        on_step(cfg.T, final)
    return final


def weight_directions(net: Net, state: PCState) -> list[Tensor]:
    """-dF/dtheta for every parameter at the state's activities (batch mean): for layer l the
    vector-Jacobian product of f_l(h_l; theta_l) with the local error e_{l+1}, e.g.
    (e_{l+1} * phi'(.)) h_l^T for a post-activation linear layer."""
    b = state.h[0].shape[0]
    if net.local_vjp:
        with torch.no_grad():
            grads = [g for l in range(net.n_layers) for g in net.linear_vjp(l, state.h[l], state.mu[l], state.errors[l], "params")]
            return grads if b == 1 else [g.div_(b) for g in grads]  # fresh tensors; x / 1 == x exactly
    x = state.h[0]
    _, grads = autodiff.vjp(
        lambda *ps: [net.layer(l, state.h[l], list(ps), x) for l in range(net.n_layers)], net.params, lambda _: state.errors
    )
    return [g / b for g in grads]


def layer_directions(net: Net, l: int, h_l: Tensor, x: Tensor, e_next: Tensor) -> list[Tensor]:
    """Layer l's share of :func:`weight_directions`: the vjp of f_l(h_l; theta) with its local error
    e_{l+1}, for every parameter (zero for those layer l does not use; a shared tensor, e.g. an RNN's
    W_h, gets this step's copy only). Batch mean."""
    ps = [p.detach().requires_grad_(True) for p in net.params]
    with torch.enable_grad():
        mu = net.layer(l, h_l.detach(), ps, x.detach())
        grads = torch.autograd.grad(mu, ps, grad_outputs=e_next, allow_unused=True)
    b = x.shape[0]
    return [torch.zeros_like(p) if g is None else g / b for p, g in zip(net.params, grads)]


def graph_distances(net: Net) -> dict[int, int]:
    """Graph distance of every free value node h_1..h_L to the output node h_L, derived from which
    nodes each layer reads (:meth:`Net.sources`). Raises ValueError when a node reaches the output along
    paths of different lengths (a skip connection): a front-by-front schedule then needs identity
    vertices to level the paths."""
    L = net.n_layers
    dist = {L: 0}
    for l in reversed(range(L)):  # layer l writes node l+1 and reads nodes with smaller indices
        if l + 1 not in dist:
            raise ValueError(f"value node {l + 1} does not reach the output")
        for s in net.sources(l):
            d = dist[l + 1] + 1
            if dist.setdefault(s, d) != d:
                raise ValueError(f"value node {s} reaches the output along paths of lengths {dist[s]} and {d}")
    return dist


def infer_front(net: Net, x: Tensor, target_fn: TargetFn, gamma: float = 1.0) -> list[Tensor]:
    """Inference from a feedforward initialisation that does only the work on the error front, and
    the local weight terms read on it.

    The same node update as :func:`infer`, ``h <- h + gamma (-e + J^T e_above)``, but at step t only
    the layers whose output node lies at graph distance t from the output propagate their local error
    e_{l+1}: one vjp per layer on the layer's own graph, kept from the feedforward pass, gives the
    feedback J_l^T e_{l+1} to its input node and, in the same call, the layer's local weight term
    (d mu_{l+1} / d theta)^T e_{l+1} at the current value nodes. Only the nodes those layers feed are
    then updated and their errors ``e = h - mu`` read. Nodes ahead of the front would not move (every
    error feeding them is still exactly zero); nodes behind it are left as they are: their later states
    feed no step still to come.

    Returns, per parameter, the sum over layers of the local weight terms (each taken at its layer's
    front step) and over the batch: -B dF/dtheta under Z-IL's schedule. A parameter shared by several
    layers (an RNN's W_h) collects one term per layer.

    For nets whose layers' products are written out (:attr:`Net.front_local`: chains of linear and conv layers, the RNN)
    both products are the layer's local rules (:meth:`Net.local_products`, tested against autograd) and
    autograd is not used, where they pay (:meth:`Net.front_pays`: not on large conv activities);
    otherwise one autograd call per layer on the front."""
    L = net.n_layers
    dist = graph_distances(net)
    front: dict[int, list[int]] = {}  # step t -> the layers whose output node is at distance t
    for l in range(L):
        front.setdefault(dist[l + 1], []).append(l)
    if net.front_pays(x):
        return _infer_front_local(net, x, target_fn, gamma, front)
    ps = [p.detach().requires_grad_(True) for p in net.params]
    x = x.detach()
    h: list[Tensor] = [x]  # node values; free nodes are leaves of their readers' graphs
    outs: list[Tensor] = []  # layer l's prediction mu_{l+1}, with its own graph
    with torch.enable_grad():
        for l in range(L):
            out = net.layer(l, h[l], ps, x)
            outs.append(out)
            h.append(out.detach().requires_grad_(l < L - 1))
    mu = [v.detach() for v in h]  # feedforward initialisation: h_l = mu_l, every hidden error is zero
    err: dict[int, Tensor] = {L: target_fn(net, mu[:L], mu[L]) - net.link(mu[L])}
    for t in sorted(front):
        fed: set[int] = set()
        for l in front[t]:
            srcs = net.sources(l)
            # accumulates J_l^T e_{l+1} into h_s.grad and the local weight term into p.grad
            torch.autograd.backward(outs[l], err[l + 1], inputs=[h[s] for s in srcs] + ps)
            fed.update(srcs)
        for s in fed:  # mu_s is still feedforward: the nodes it reads are ahead of the front
            err[s] = _front_node_error(h[s].detach(), h[s].grad, mu[s], gamma)
    return [torch.zeros_like(p) if p.grad is None else p.grad for p in ps]


def _front_node_error(h_s: Tensor, feedback: Tensor, mu_s: Tensor, gamma: float) -> Tensor:
    """A node on the error front takes the inference step h_s <- h_s + gamma (-e_s + J^T e_above)
    from its feedforward value (e_s = h_s - mu_s = 0 there); returns its new error h_s - mu_s."""
    return torch.add(h_s, feedback - (h_s - mu_s), alpha=gamma) - mu_s


def _infer_front_local(net: Net, x: Tensor, target_fn: TargetFn, gamma: float, front: dict[int, list[int]]) -> list[Tensor]:
    """:func:`infer_front` with every product by the layer's written-out local rule."""
    L = net.n_layers
    out: list[Tensor | None] = [None] * len(net.params)
    with torch.no_grad():
        mu = net.forward(x)  # feedforward initialisation: h_l = mu_l, every hidden error is zero
        err: dict[int, Tensor] = {L: target_fn(net, mu[:L], mu[L]) - net.link(mu[L])}
        for t in sorted(front):
            fb: dict[int, Tensor] = {}
            for l in front[t]:
                dh, terms = net.local_products(l, mu[l], mu[l + 1], err[l + 1], x)
                for i, term in terms:  # a shared parameter collects one term per layer
                    out[i] = term if out[i] is None else out[i].add_(term)
                for s in net.sources(l):
                    fb[s] = dh if s not in fb else fb[s] + dh
            for s, j in fb.items():  # node s, at its feedforward value h_s = mu_s
                err[s] = _front_node_error(mu[s], j, mu[s], gamma)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(net.params, out)]


def energy(net: Net, state: PCState, y: Tensor | None = None, output_weight: float = 1.0) -> dict[str, float]:
    """Energy components (batch mean): internal (hidden) energy, output loss, and the total
    internal + output_weight * output.

    Without ``y`` the output term is the loss of the prediction against the state's target. With a
    target recomputed every step as p + lam (y - p) (``soft_clamp(y, lam)``) the energy that inference
    descends is sum 1/2||e_l||^2 + lam * loss(mu_L, y): pass ``y`` and ``output_weight=lam`` for it."""
    b = state.h[0].shape[0]
    internal = sum(0.5 * float((e**2).sum()) for e in state.errors[:-1]) / b
    out = float(net.loss(state.mu[-1], state.target if y is None else y))
    return {"internal": internal, "output": out, "total": internal + output_weight * out}
