"""A Hopfield-type energy on an MLP-shaped network, for equilibrium propagation and contrastive Hebbian
learning (Millidge et al. 2022, Scellier & Bengio 2017, Xie & Seung 2003).

Units x_0 (the input, clamped), x_1, ..., x_L (the output); the weights are those of an MLP
:class:`~ilrepro.models.Net` (``post`` parameterisation), used symmetrically. With rho_l the activation of
x_l (the model's activation for hidden units, identity for the input and the output) and
a_l = W_{l-1} rho_{l-1}(x_{l-1}) + b_{l-1} the layer's affine drive,

    E_l = 1/2 ||x_l||^2 - rho_l(x_l)^T a_l,        E = sum_l c_l E_l,   c_l = gamma^l.

gamma = 1 is the usual Hopfield energy (EqProp). gamma < 1 weights deeper layers less, which makes the
feedback that layer l receives from layer l+1 gamma times its feedforward drive (Xie & Seung's weak
feedback, kept as an energy); relaxation descends E with the diagonal preconditioner 1/c_l, i.e.

    x_l <- x_l - dt [ dE_l/dx_l + gamma dE_{l+1}/dx_l ]  (+ beta dloss/dx_L at the output),

which stays well defined at gamma = 0: there the fixed point is a layer-by-layer feedforward map
x_l = rho_l'(x_l) a_l. For ReLU (and identity) units that is exactly the MLP's feedforward pass; for tanh or
sigmoid units it is not rho_l(a_l), so the Hopfield net is another function than the MLP with the same
weights, and the gradient EqProp / CHL approximate is :func:`recurrent_bp`'s, not feedforward BP. (An
energy whose gamma = 0 map is the tanh MLP needs G(x_l) - x_l^T a_l with G' = rho^-1, states confined to
rho's range: another energy, not this one.) All derivatives come from autograd.
The loss is the net's loss of the output *state* x_L (e.g. 1/2 ||x_L - y||^2 for ``mse``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .models import ACTIVATIONS, Net

__all__ = ["HopfieldConfig", "layer_energies", "layer_energies_at", "initial_state", "energy", "relax", "param_gradient", "recurrent_bp", "free_output"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class HopfieldConfig:
    T: int  # relaxation steps of the free phase (the nudged / clamped phase starts from the free state)
    dt: float  # relaxation step size
    gamma: float = 1.0  # feedback strength (1: the plain Hopfield energy)
    T_nudge: int | None = None  # steps of the second phase (default T)

    def __post_init__(self) -> None:
        if self.T < 0 or (self.T_nudge is not None and self.T_nudge < 0):
            raise ValueError("relaxation steps T, T_nudge must be >= 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"feedback gamma must be in [0, 1], got {self.gamma}")
        if self.dt <= 0:
            raise ValueError(f"relaxation step dt must be > 0, got {self.dt}")


def _rho(net: Net, l: int, x: Tensor) -> Tensor:
    """rho_l: identity for the input (data) and the output, the layer's activation for hidden units."""
    if l == 0:
        return x.flatten(1)
    return ACTIVATIONS[net.layers[l - 1].out_act](x)


def _check(net: Net) -> None:
    if any(s.kind != "linear" for s in net.layers):
        raise ValueError("the Hopfield energy is defined for MLPs (linear layers) only")


def layer_energies_at(net: Net, xs: list[Tensor], l: int, params: list[Tensor] | None = None) -> Tensor:
    """E_l = 1/2 ||x_l||^2 - rho_l(x_l)^T (W_{l-1} rho_{l-1}(x_{l-1}) + b_{l-1}), summed over the batch."""
    a = net.affine(l - 1, _rho(net, l - 1, xs[l - 1]), params)
    return 0.5 * (xs[l] ** 2).sum() - (_rho(net, l, xs[l]) * a).sum()


def layer_energies(net: Net, xs: list[Tensor], params: list[Tensor] | None = None) -> list[Tensor]:
    """[E_1, ..., E_L], each summed over the batch; ``xs`` = [x_0, ..., x_L]."""
    return [layer_energies_at(net, xs, l, params) for l in range(1, net.n_layers + 1)]


def energy(net: Net, xs: list[Tensor], gamma: float = 1.0) -> float:
    """E = sum_l gamma^l E_l, batch mean."""
    es = layer_energies(net, xs)
    return float(sum(gamma ** (l + 1) * e for l, e in enumerate(es))) / xs[0].shape[0]


def _force(
    net: Net,
    xs: list[Tensor],
    gamma: float,
    y: Tensor | None = None,
    beta: float = 0.0,
    create_graph: bool = False,
    params: list[Tensor] | None = None,
) -> list[Tensor]:
    """The preconditioned gradient of E + beta * B * loss(x_L) (batch-summed) for x_1..x_L:
    gamma^-k d/dx_k [sum_l gamma^l E_l + gamma^L beta B loss]  =  dE_k/dx_k + gamma dE_{k+1}/dx_k (+ nudge).
    With ``create_graph`` it stays differentiable in the states and the parameters (for BPTT)."""
    b = xs[0].shape[0]
    probes = [v if v.requires_grad else v.detach().requires_grad_(True) for v in xs[1:]]
    state = [xs[0], *probes]
    L = net.n_layers
    with torch.enable_grad():
        if gamma == 0.0:  # no feedback: each unit sees only its own layer's term (and the nudge)
            grads = []
            for l in range(1, L + 1):
                e = layer_energies_at(net, state, l, params)
                if l == L and y is not None and beta != 0.0:
                    e = e + beta * b * net.loss(probes[-1], y)
                grads.append(torch.autograd.grad(e, probes[l - 1], create_graph=create_graph)[0])
            return grads
        es = layer_energies(net, state, params)
        total = sum(gamma ** (l + 1) * e for l, e in enumerate(es))
        if y is not None and beta != 0.0:
            total = total + gamma**L * beta * b * net.loss(probes[-1], y)
        grads = torch.autograd.grad(total, probes, create_graph=create_graph)
    return [g / gamma ** (k + 1) for k, g in enumerate(grads)]


def relax(
    net: Net,
    xs: list[Tensor],
    steps: int,
    dt: float,
    gamma: float = 1.0,
    y: Tensor | None = None,
    beta: float = 0.0,
    clamp_output: bool = False,
) -> list[Tensor]:
    """``steps`` steps of (preconditioned) gradient descent on E + beta * loss from ``xs``; the input
    stays clamped, and with ``clamp_output`` the output too (CHL's clamped phase)."""
    _check(net)
    xs = [x.detach() for x in xs]
    for _ in range(steps):
        g = _force(net, xs, gamma, y, beta)
        new = [x - dt * gl.detach() for x, gl in zip(xs[1:], g)]
        if clamp_output:
            new[-1] = xs[-1]
        xs = [xs[0]] + new
    return xs


def initial_state(net: Net, x: Tensor) -> list[Tensor]:
    """The feedforward pass (the exact free state for ReLU at gamma = 0, a good start otherwise)."""
    with torch.no_grad():
        return net.forward(x)


def free_output(net: Net, x: Tensor, cfg: HopfieldConfig) -> Tensor:
    """The network's prediction: the output units at the free equilibrium."""
    return relax(net, initial_state(net, x), cfg.T, cfg.dt, cfg.gamma)[-1]


def param_gradient(net: Net, xs: list[Tensor], gamma: float = 1.0) -> list[Tensor]:
    """dE/dtheta / gamma^L (batch mean) at the state ``xs``: for W_l the Hebbian term
    -gamma^(l+1-L) rho(x_{l+1}) rho(x_l)^T, i.e. the per-layer learning-rate rescaling gamma^-(L-1-l)
    of the plain Hebbian rule that compensates the gamma^(L-1-l) attenuation of the clamp's effect."""
    if gamma <= 0.0:
        raise ValueError("param_gradient rescales by gamma^-L: gamma must be > 0")
    ps = [p.detach().requires_grad_(True) for p in net.params]
    L = net.n_layers
    with torch.enable_grad():
        es = layer_energies(net, [x.detach() for x in xs], ps)
        grads = []
        for l, e in enumerate(es):
            gw, gb = torch.autograd.grad(e, [ps[2 * l], ps[2 * l + 1]])
            scale = 1.0 if gamma == 1.0 else gamma ** (l + 1 - L)
            grads += [scale * gw, scale * gb]
    b = xs[0].shape[0]
    return [g / b for g in grads]


def recurrent_bp(net: Net, x: Tensor, y: Tensor, cfg: HopfieldConfig, K: int | None = None, xs: list[Tensor] | None = None) -> list[Tensor]:
    """d loss(x_L*(theta), y) / d theta at the free fixed point (recurrent backprop), by backprop through
    ``K`` relaxation steps started at the (detached) free equilibrium: x_K = Phi^K(x*, theta) has
    dx_K/dtheta = sum_k J^k dPhi/dtheta -> (I - J)^-1 dPhi/dtheta, the implicit-function gradient, as
    fast as the relaxation itself converges. At gamma = 0 (ReLU) this is feedforward BP."""
    if xs is None:
        xs = relax(net, initial_state(net, x), cfg.T, cfg.dt, cfg.gamma)
    K = cfg.T if K is None else K
    ps = [p.detach().requires_grad_(True) for p in net.params]
    with torch.enable_grad():
        state = [v.detach() for v in xs]
        for _ in range(K):
            g = _force(net, state, cfg.gamma, create_graph=True, params=ps)
            state = [state[0]] + [v - cfg.dt * gl for v, gl in zip(state[1:], g)]
        return list(torch.autograd.grad(net.loss(state[-1], y), ps))
