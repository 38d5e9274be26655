"""IL-prox and implicit SGD: the sheet's exact identity, the solver's optimality, and the stability
mechanism (kappa saturates, so IL-prox's step stays bounded as alpha grows; BP-SGD's grows linearly)."""

from __future__ import annotations

import math

import pytest
import torch

from ilrepro.algorithms import make_algorithm
from ilrepro.algorithms import bp_gradient
from ilrepro.algorithms.prox import implicit_sgd_error, implicit_sgd_solve, softplus_net
from ilrepro.models import build_model

from conftest import batch, small_mlp


def _one_linear_layer(n_in=6, n_out=3, seed=0):
    return build_model({"type": "mlp", "hidden": [], "output_loss": "mse"}, (1, 1, n_in), n_out, "pre", seed, torch.float64)


def _step(name, net, x, y, lr, **hp):
    net = net.clone()
    before = [p.clone() for p in net.params]
    make_algorithm(name, net, lr, hp).step(net, x, y)
    return [p - b for p, b in zip(net.params, before)]


@pytest.mark.parametrize("alpha", [0.01, 0.5, 3.0, 100.0])
def test_il_prox_equals_implicit_sgd_for_one_linear_layer(alpha):
    """One linear layer, squared loss, B=1, eps=0: IL-prox's update IS the proximal step."""
    net = _one_linear_layer()
    x, _ = batch(n=1, n_in=6, n_out=3)
    y = torch.randn(1, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    il = _step("il_prox", net, x, y, alpha, eps=0.0)
    phi, residual = implicit_sgd_solve(net, x, y, alpha, tol=1e-12, ftol=0.0)
    ref = [p - q for p, q in zip(phi, net.params)]
    assert residual < 1e-9
    for a, b in zip(il, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # closed form of the sheet: z' = z + kappa (y - z), dW = (z' - z) a^T / (||a||^2 + 1)
    a_vec = x.flatten(1)
    n = float((a_vec**2).sum()) + 1.0
    kappa = alpha * n / (1 + alpha * n)
    z = net.logits(x)
    torch.testing.assert_close(il[0], (kappa * (y - z)).T @ a_vec / n, rtol=1e-10, atol=1e-12)


def test_il_prox_is_not_explicit_sgd():
    """...and it differs from the explicit (BP-SGD) step at a large alpha: the test above can fail."""
    net = _one_linear_layer()
    x, _ = batch(n=1, n_in=6, n_out=3)
    y = torch.randn(1, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    il = _step("il_prox", net, x, y, 3.0, eps=0.0)
    bp = [-3.0 * g for g in bp_gradient(net, x, y)]
    assert float((il[0] - bp[0]).norm()) > 0.5 * float(bp[0].norm())


@pytest.mark.parametrize("act", ["tanh", "identity"])
def test_implicit_sgd_solution_is_stationary(act):
    """grad L(phi) + (phi - theta) / alpha = 0 at the solver's solution (smooth nets, float64), to 1e-7:
    about the square root of float64's resolution of the objective, below which no line search can go
    (the gradient at theta itself is ~0.5, so this is six orders of magnitude)."""
    net = small_mlp("pre", activation=act, hidden=(8, 6))
    x, y = batch(n=4)
    alpha = 2.0
    phi, residual = implicit_sgd_solve(net, x, y, alpha, tol=1e-9, max_iter=2000, ftol=0.0)
    probe = net.clone()
    probe.params = phi
    g = bp_gradient(probe, x, y)
    stationarity = math.sqrt(sum(float(((gi + (p - t) / alpha) ** 2).sum()) for gi, p, t in zip(g, phi, net.params)))
    assert stationarity < 1e-7 and residual < 1e-7
    moved = math.sqrt(sum(float(((p - t) ** 2).sum()) for p, t in zip(phi, net.params)))
    assert moved > 1e-2  # it is a real step, not theta itself


def _norm(ds):
    return math.sqrt(sum(float((d**2).sum()) for d in ds))


def test_il_prox_step_is_bounded_as_alpha_grows_bp_step_is_not():
    net = small_mlp("pre", hidden=(16, 12))
    x, y = batch(n=1)
    alphas = [1.0, 10.0, 100.0, 1e4]
    il = [_norm(_step("il_prox", net, x, y, a)) for a in alphas]
    bp = [_norm(_step("bp_sgd", net, x, y, a)) for a in alphas]
    # BP-SGD: exactly linear in alpha
    for a, s in zip(alphas, bp):
        assert s == pytest.approx(bp[0] * a, rel=1e-9)
    # IL-prox: kappa -> 1, so the step converges to a finite limit
    assert il[-1] == pytest.approx(il[-2], rel=0.02)
    assert il[-1] < 2 * il[0]
    assert il[-1] / il[0] < 1e-2 * (bp[-1] / bp[0])


def test_il_prox_fast_and_adam_and_bp_prox_run():
    net = small_mlp("pre", hidden=(8, 6))
    x, y = batch(n=2)
    for name, hp in (("il_prox_fast", {}), ("il_prox_adam", {"adam_lr": 1e-3}), ("bp_prox", {"eps": 1.0})):
        d = _step(name, net, x, y, 5.0, **hp)
        assert all(torch.isfinite(t).all() for t in d) and _norm(d) > 0


def test_softplus_net_is_the_relu_net_smoothed():
    net = small_mlp("pre", hidden=(16, 12))
    x, _ = batch(n=4)
    with torch.no_grad():
        gap = [float((softplus_net(net, b).logits(x) - net.logits(x)).abs().max()) for b in (10.0, 1e4)]
    assert gap[1] < 1e-4 and gap[0] > 1e-2  # (softplus(beta h)/beta is within log 2 / beta of relu)
    with pytest.raises(ValueError, match="beta must be > 0"):
        softplus_net(net, 0.0)


def _truncated_solve(net, x, y, alpha, steps=2, lr=0.005):
    """A deliberately poor solve: a few gradient steps on the proximal objective from theta."""
    theta = [p.detach() for p in net.params]
    phi = [p.clone() for p in theta]
    for _ in range(steps):
        phi = [p.requires_grad_(True) for p in phi]
        obj = net.loss(net.logits(x, phi), y) + sum(((p - t) ** 2).sum() for p, t in zip(phi, theta)) / (2 * alpha)
        phi = [(p - lr * g).detach() for p, g in zip(phi, torch.autograd.grad(obj, phi))]
    return phi


@pytest.mark.parametrize("alpha", [0.05, 0.5, 2.5])
def test_solver_error_is_small_for_the_solver_and_large_for_a_truncated_solve(alpha):
    """The accuracy measure (distance of the update to the smoothed problem's, solved tightly): small for
    the L-BFGS solve of the ReLU net (measured ~1e-3 here, where its gradient-norm residual is ~4e-2:
    the residual is no accuracy), ~0.8-1 for two GD steps of 0.005 (the authors' step size)."""
    net = small_mlp("pre", seed=1, hidden=(16, 12))
    x, y = batch(n=1, seed=1)
    phi, _ = implicit_sgd_solve(net, x, y, alpha, tol=1e-7)
    good = implicit_sgd_error(net, x, y, alpha, phi)
    assert good["solver_rel_dist"] < 0.02 and good["solver_cos"] > 0.999 and good["smooth_residual"] < 1e-6
    bad = implicit_sgd_error(net, x, y, alpha, _truncated_solve(net, x, y, alpha))
    assert bad["solver_rel_dist"] > 0.5


@pytest.mark.parametrize("native_on", ["1", "0"])
def test_bp_prox_makes_its_soft_target_once_an_update(native_on, monkeypatch):
    """One feedforward pass for the soft target per update, on the fast path and where it cannot run
    (its native step gives up before the pass, the reference makes it once)."""
    from ilrepro.algorithms.prox import BPProx

    monkeypatch.setenv("ILREPRO_NATIVE", native_on)
    net = small_mlp("pre", hidden=(8, 6))
    x, y = batch(n=2)
    algo = make_algorithm("bp_prox", net, 0.5, {"eps": 1.0})
    calls = []
    original = BPProx._soft_target
    monkeypatch.setattr(BPProx, "_soft_target", lambda self, *a: calls.append(1) or original(self, *a))
    for _ in range(3):
        algo.step(net, x, y)
    assert len(calls) == 3
