"""Millidge et al. 2022: PC-Nudge, EqProp and CHL tend to (their) BP as the nudge / feedback -> 0."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from ilrepro import native
from ilrepro.algorithms import AlgorithmError, make_algorithm
from ilrepro.algorithms import bp_gradient
from ilrepro.algorithms.ebm import PCNudge, chl_gradient, eqprop_gradient, pc_nudge_gradient
from ilrepro.algorithms.il import soft_clamp
from ilrepro.energy import InferenceConfig, energy, infer, pc_state
from ilrepro.config import ConfigError, check_config
from ilrepro.hopfield import HopfieldConfig, initial_state, layer_energies, recurrent_bp, relax
from ilrepro.models import ACTIVATIONS, build_model, divided_difference
from ilrepro.runtime import cosine

from conftest import batch, small_mlp


def _flat(g):
    return torch.cat([t.flatten() for t in g])


def _rel(a, b) -> float:
    a, b = _flat(a), _flat(b)
    return float((a - b).norm() / b.norm())


def _slope(betas, errs) -> float:
    return float(np.polyfit(np.log10(betas), np.log10(errs), 1)[0])


def _millidge_net(seed=0):
    """Millidge's setting: post-activation ReLU MLP, identity output, squared error."""
    return small_mlp("post", seed=seed, hidden=(8, 6), output_loss="mse")


def _hopfield_net(seed=0, act="sigmoid"):
    return small_mlp("post", seed=seed, hidden=(8, 6), activation=act, output_loss="mse")


# ------------------------------------------------------------------------------------------ PC-Nudge
@pytest.mark.parametrize("form", ["scaled", "direct"])
def test_pc_nudge_tends_to_bp_linearly_and_reaches_it(form):
    """g_PC / lam -> g_BP: log-log slope ~1, and <= 1e-6 relative error at lam = 1e-7 (equilibrium)."""
    net = _millidge_net()
    x, y = batch(n=3)
    bp = bp_gradient(net, x, y)
    cfg = InferenceConfig(T=400, gamma_bot=0.3, gamma_top=0.3)
    lams = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3]
    errs = [_rel(pc_nudge_gradient(net, x, y, lam, cfg, form), bp) for lam in lams]
    assert 0.9 < _slope(lams, errs) < 1.1, errs
    assert _rel(pc_nudge_gradient(net, x, y, 1e-7, cfg, form), bp) <= 1e-6


def test_pc_nudge_scaled_form_reaches_bp_in_float32():
    """In float32 the scaled form follows g_BP down to lam = 1e-7 (relative error ~lam); the direct
    form's hidden errors, O(lam) differences of O(1) values, lose their digits: far off."""
    net = _millidge_net()
    x, y = batch(n=3)
    bp = bp_gradient(net, x, y)
    n32, x32, y32 = _as(net, torch.float32), x.float(), y.float()
    cfg = InferenceConfig(T=400, gamma_bot=0.3, gamma_top=0.3)
    for lam in (1e-6, 1e-7):
        assert _rel(pc_nudge_gradient(n32, x32, y32, lam, cfg, "scaled"), bp) <= 3 * lam + 1e-7
        assert _rel(pc_nudge_gradient(n32, x32, y32, lam, cfg, "direct"), bp) > 1e-2


def _as(net, dtype):
    """The same net with its weights in ``dtype``."""
    return dataclasses.replace(net, params=[p.to(dtype) for p in net.params])


SCALED_NETS = {
    "relu": lambda: _millidge_net(),
    "sigmoid": lambda: _hopfield_net(act="sigmoid"),
    "tanh-pre": lambda: small_mlp("pre", hidden=(8, 6), activation="tanh", output_loss="mse"),  # in_act's difference
    "cnn-ce": lambda: build_model({"type": "cnn", "channels": [2], "kernels": [3]}, (1, 5, 5), 4, "post", 0, torch.float64),
}


@pytest.mark.parametrize("kind", sorted(SCALED_NETS))
def test_pc_nudge_scaled_form_is_the_direct_form_in_float64(kind):
    """Inference on the scaled deviations (h - h_ff) / lam is the same mathematics as on h: in float64
    the two updates agree to ~1e-10 relative, for a small and a large nudge, mid-inference and at the end."""
    net = SCALED_NETS[kind]()
    x, y = batch(n=4, n_in=25) if kind == "cnn-ce" else batch(n=4)
    if kind == "cnn-ce":
        x = x.reshape(4, 1, 5, 5)
    for lam, T in ((1e-4, 50), (0.5, 50), (1e-4, 3)):
        cfg = InferenceConfig(T=T, gamma_bot=0.3, gamma_top=0.3)
        scaled, direct = pc_nudge_gradient(net, x, y, lam, cfg, "scaled"), pc_nudge_gradient(net, x, y, lam, cfg, "direct")
        assert _rel(scaled, direct) <= (1e-10 if lam < 1e-2 else 1e-12), (lam, T)


@pytest.mark.parametrize("act", ["relu", "sigmoid"])
def test_pc_nudge_scaled_form_tracks_float64_in_float32_training(act):
    """Training a small MLP in float32 (the paper's lam = 1e-4, 50 steps, dt = 0.3): at every update the
    scaled form's float32 update equals the float64 update at the same weights to ~1e-6 relative; the
    direct form's float32 update is off by ~lam^-1 x float32 rounding (here > 1e-4, 100x the scaled's)."""
    net = small_mlp("post", hidden=(16, 12), n_in=12, n_out=5, activation=act, output_loss="mse", dtype=torch.float32)
    algo = make_algorithm("pc_nudge", net, 0.05, {"lam": 1e-4, "T": 50, "dt": 0.3})  # form: scaled (default)
    cfg = InferenceConfig(T=50, gamma_bot=0.3, gamma_top=0.3)
    worst_scaled, best_direct = 0.0, math.inf
    for k in range(5):
        x, y = batch(n=32, n_in=12, n_out=5, seed=10 + k, dtype=torch.float32)
        x = 2 * x - 1  # pixels in [-1, 1], as in the paper
        exact = pc_nudge_gradient(_as(net, torch.float64), x.double(), y.double(), 1e-4, cfg, "direct")
        direct = pc_nudge_gradient(net, x, y, 1e-4, cfg, "direct")
        g = algo.step(net, x, y)
        worst_scaled, best_direct = max(worst_scaled, _rel(g, exact)), min(best_direct, _rel(direct, exact))
    assert worst_scaled <= 1e-6, worst_scaled
    assert best_direct > 1e-4 and best_direct > 100 * worst_scaled, (best_direct, worst_scaled)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "identity"])
def test_divided_difference_is_accurate_in_float32(act):
    """[f(a + lam v) - f(a)] / lam in float32 to float32 rounding of the float64 value at the same
    inputs, ReLU units that cross the kink included; the plain float32 difference loses ~lam^-1 x
    rounding."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2000, generator=g, dtype=torch.float64) * 3
    v = torch.randn(2000, generator=g, dtype=torch.float64)
    f = ACTIVATIONS[act]
    for lam in (1e-3, 1e-5):
        if act == "relu":
            a[:50] = -0.5 * lam * v[:50]  # these cross the kink
        a32, v32 = a.float(), v.float()
        a64, v64 = a32.double(), v32.double()  # the float32 inputs, exactly
        exact = (f(a64 + lam * v64) - f(a64)) / lam
        got = divided_difference(act, a32, v32, lam).double()
        scale = exact.abs().clamp_min(v64.abs() * 1e-3)
        assert float(((got - exact).abs() / scale).max()) <= 1e-6, lam
        if act == "relu":
            assert int(((a64 > 0) != (a64 + lam * v64 > 0)).sum()) >= 50  # the crossing units were tested
        naive = ((f(a32 + lam * v32) - f(a32)) / lam).double()
        if act != "relu":
            assert float(((naive - exact).abs() / scale).max()) > 1e-3


def test_pc_nudge_form_is_a_checked_hparam_and_the_native_path_runs_direct_only(monkeypatch):
    net = _millidge_net()
    with pytest.raises(AlgorithmError, match="form") as err:
        make_algorithm("pc_nudge", net, 0.1, {"form": "exact"})
    assert err.value.key == "form"
    rnn = build_model({"type": "rnn", "hidden": [4]}, (1, 3, 3), 2, "post", 0, torch.float64)
    with pytest.raises(AlgorithmError, match="form"):
        make_algorithm("pc_nudge", rnn, 0.1)
    make_algorithm("pc_nudge", rnn, 0.1, {"form": "direct"})  # the direct form runs on any net
    x, y = batch(n=3)
    assert make_algorithm("pc_nudge", net, 0.1).native_gradient(net, x, y) is None
    assert not native.serves(net, PCNudge) and not native.serves(net, PCNudge, {"form": "scaled"})
    assert PCNudge.has_native({"form": "direct"}) and not PCNudge.has_native()


def test_pc_nudge_needs_equilibrium():
    """With too few inference steps the rescaled update is not BP (the limit needs the equilibrium)."""
    net = _millidge_net()
    x, y = batch(n=3)
    err = _rel(pc_nudge_gradient(net, x, y, 1e-4, InferenceConfig(T=1, gamma_bot=0.3, gamma_top=0.3)), bp_gradient(net, x, y))
    assert err > 0.1


def test_weighted_energy_is_what_inference_descends_and_decreases():
    """With the target p + lam (y - p), F = sum 1/2||e||^2 + lam * loss(mu_L, y): -dF/dh is the
    inference step's direction, and F decreases monotonically for a small step."""
    net = _millidge_net()
    x, y = batch(n=4)
    lam = 0.5
    tgt = soft_clamp(y, lam)
    with torch.no_grad():
        h = net.forward(x)[:-1]
    h = [h[0]] + [v + 0.2 for v in h[1:]]
    st, fb = pc_state(net, h, tgt, feedback=True)
    hs = [h[0]] + [v.clone().requires_grad_(True) for v in h[1:]]
    mu = [net.layer(l, hs[l]) for l in range(net.n_layers)]
    F = sum(0.5 * ((hs[l] - mu[l - 1]) ** 2).sum() for l in range(1, net.n_layers)) + x.shape[0] * lam * net.loss(mu[-1], y)
    assert math.isclose(float(F.detach()) / x.shape[0], energy(net, st, y, lam)["total"], rel_tol=1e-12)
    grads = torch.autograd.grad(F, hs[1:])
    for l in range(1, net.n_layers):
        torch.testing.assert_close(-st.errors[l - 1] + fb[l - 1], -grads[l - 1], rtol=1e-10, atol=1e-12)
    totals = []
    infer(net, x, tgt, InferenceConfig(T=50, gamma_bot=0.1, gamma_top=0.1), on_step=lambda t, s: totals.append(energy(net, s, y, lam)["total"]))
    assert all(b <= a + 1e-12 for a, b in zip(totals, totals[1:])), totals
    assert totals[-1] < totals[0]


def test_pc_nudge_algorithm_with_momentum():
    net = _millidge_net()
    x, y = batch(n=3)
    algo = make_algorithm("pc_nudge", net, 0.1, {"lam": 1e-3, "T": 30, "dt": 0.3, "momentum": 0.9})
    assert algo.opt.momentum == 0.9
    expected = pc_nudge_gradient(net, x, y, 1e-3, InferenceConfig(30, 0.3, 0.3))
    before = [p.clone() for p in net.params]
    g = algo.step(net, x, y)
    for a, b in zip(g, expected):
        torch.testing.assert_close(a, b)
    for p, b0, gi in zip(net.params, before, g):
        torch.testing.assert_close(p, b0 - 0.1 * gi)


def test_momentum_is_checked_in_config():
    base = {
        "experiments": {
            "e": {
                "dataset": "digits", "model": {"type": "mlp"}, "batch_size": 4, "updates": 2, "eval_every": 1, "seeds": [0],
                "algorithms": {"a": {"algorithm": "bp_sgd", "lr": [0.1], "hparams": {"momentum": 0.9}}},
            }
        },
        "figures": {},
    }
    check_config(base)
    base["experiments"]["e"]["algorithms"]["a"]["algorithm"] = "bp_adam"
    with pytest.raises(ConfigError, match="momentum"):
        check_config(base)


# ------------------------------------------------------------------------------------- Hopfield net
def test_hopfield_relaxation_descends_energy_and_reaches_fixed_point():
    """Gradient descent on E + beta * loss lowers it monotonically; at gamma < 1 the free fixed point
    satisfies x_l = rho'(x_l) (a_l + gamma W_l^T rho(x_{l+1})) (hand-written check of the preconditioned force)."""
    net = _hopfield_net()
    x, y = batch(n=3)
    xs = initial_state(net, x)
    beta = 0.5

    def F(state):
        return float(sum(layer_energies(net, state))) + beta * x.shape[0] * float(net.loss(state[-1], y))

    vals = [F(xs)]
    for _ in range(40):
        xs = relax(net, xs, 1, 0.2, y=y, beta=beta)
        vals.append(F(xs))
    assert all(b <= a + 1e-12 for a, b in zip(vals, vals[1:])), vals
    gamma = 0.3
    xs = relax(net, initial_state(net, x), 300, 0.5, gamma)
    rho = ACTIVATIONS["sigmoid"]
    for l in range(1, net.n_layers):
        w, b = net.layer_params(l - 1)
        pre = xs[l - 1].flatten(1) if l == 1 else rho(xs[l - 1])
        drive = pre @ w.T + b + gamma * (xs[l + 1] if l + 1 == net.n_layers else rho(xs[l + 1])) @ net.layer_params(l)[0]
        s = rho(xs[l])
        torch.testing.assert_close(xs[l], s * (1 - s) * drive, rtol=1e-10, atol=1e-12)


def test_recurrent_bp_is_the_loss_gradient_at_the_free_fixed_point():
    """The reference for EqProp: its directional derivative matches a central finite difference of
    loss(x*(theta)) with fresh relaxations."""
    net = _hopfield_net()
    x, y = batch(n=2)
    cfg = HopfieldConfig(T=300, dt=0.5)
    g = recurrent_bp(net, x, y, cfg)
    d = [torch.randn(p.shape, generator=torch.Generator().manual_seed(i), dtype=p.dtype) for i, p in enumerate(net.params)]
    eps = 1e-5

    def loss_at(sign):
        n = net.clone()
        n.params = [p + sign * eps * v for p, v in zip(net.params, d)]
        return float(n.loss(relax(n, initial_state(n, x), cfg.T, cfg.dt)[-1], y))

    fd = (loss_at(1) - loss_at(-1)) / (2 * eps)
    an = float(sum((a * v).sum() for a, v in zip(g, d)))
    assert math.isclose(fd, an, rel_tol=1e-6), (fd, an)
    # and it is not feedforward BP: the free equilibrium of the Hopfield net is no feedforward pass
    assert _rel(g, bp_gradient(net, x, y)) > 0.05


def _implicit_gradient(net, x, y, xs, gamma):
    """d loss(x_L*) / d theta by the implicit-function theorem, independently of :mod:`ilrepro.hopfield`:
    the tanh Hopfield energy written out here, its stationarity conditions F(x, theta) = 0 (preconditioned:
    F_l = dE_l/dx_l + gamma dE_{l+1}/dx_l, only the first at gamma = 0), dx*/dtheta = -F_x^-1 F_theta by a
    dense solve on the flattened states and parameters (torch.func jacobians)."""
    from torch.func import jacrev

    B, L = x.shape[0], net.n_layers
    x0 = x.flatten(1)
    shapes = [v.shape for v in xs[1:]]
    pshapes = [p.shape for p in net.params]

    def split(v, shp):
        out, i = [], 0
        for s_ in shp:
            n = math.prod(s_)
            out.append(v[i : i + n].reshape(s_))
            i += n
        return out

    def energies(st, th):  # E_k = 1/2 ||x_k||^2 - rho(x_k)^T (W rho(x_{k-1}) + b), identity at the output
        rho = [x0] + [torch.tanh(v) for v in st[:-1]] + [st[-1]]
        return [0.5 * (st[k] ** 2).sum() - (rho[k + 1] * (rho[k] @ th[2 * k].T + th[2 * k + 1])).sum() for k in range(L)]

    def own(xv, tv, l):  # dE_l / dx_l
        return jacrev(lambda v: energies([*split(xv, shapes)[:l], v, *split(xv, shapes)[l + 1 :]], split(tv, pshapes))[l])(split(xv, shapes)[l])

    def above(xv, tv, l):  # dE_{l+1} / dx_l
        return jacrev(lambda v: energies([*split(xv, shapes)[:l], v, *split(xv, shapes)[l + 1 :]], split(tv, pshapes))[l + 1])(split(xv, shapes)[l])

    def F(xv, tv):
        parts = [own(xv, tv, l) + (gamma * above(xv, tv, l) if l + 1 < L else 0.0) for l in range(L)]
        return torch.cat([f.flatten() for f in parts])

    xv = torch.cat([v.flatten() for v in xs[1:]])
    tv = torch.cat([p.flatten() for p in net.params])
    assert float(F(xv, tv).norm()) < 1e-10  # a fixed point, by the hand-written conditions
    dx = -torch.linalg.solve(jacrev(F, 0)(xv, tv), jacrev(F, 1)(xv, tv))
    n_out = B * shapes[-1][1]
    dl = jacrev(lambda v: net.loss(v.reshape(shapes[-1]), y))(xv[-n_out:])
    return split(dl @ dx[-n_out:], pshapes)


@pytest.mark.parametrize("gamma", [1.0, 0.3, 0.0])
def test_recurrent_bp_is_the_implicit_gradient_for_tanh_units(gamma):
    """recurrent_bp (BPTT through the relaxation from the free equilibrium) equals the implicit-function
    gradient of the loss at the free fixed point, for tanh units and feedback gamma; and it is *not*
    feedforward BP of the tanh MLP with the same weights (x_l = rho'(x_l) a_l is not rho(a_l)), even at
    gamma = 0, so a reference that were feedforward BP fails here."""
    net = small_mlp("post", seed=0, hidden=(4, 3), activation="tanh", output_loss="mse")
    x, y = batch(n=2)
    cfg = HopfieldConfig(T=400, dt=0.5, gamma=gamma)
    free = relax(net, initial_state(net, x), cfg.T, cfg.dt, gamma)
    g = recurrent_bp(net, x, y, cfg, xs=free)
    assert _rel(g, _implicit_gradient(net, x, y, free, gamma)) < 1e-10
    assert _rel(g, bp_gradient(net, x, y)) > 0.05


def test_relu_hopfield_without_feedback_is_the_mlp():
    """At gamma = 0 with ReLU units the free state is the feedforward pass and the reference is BP."""
    net = _hopfield_net(act="relu")
    x, y = batch(n=3)
    cfg = HopfieldConfig(T=50, dt=0.5, gamma=0.0)
    assert _rel(recurrent_bp(net, x, y, cfg), bp_gradient(net, x, y)) < 1e-12


# ---------------------------------------------------------------------------------- EqProp and CHL
BETAS = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3]


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
@pytest.mark.parametrize(("estimator", "order"), [("one_sided", 1), ("symmetric", 2), ("random", 1)])
def test_eqprop_tends_to_recurrent_bp(estimator, order, act):
    """update -> recurrent BP at the free fixed point with log-log slope 1 (2 for +-beta), and stays
    away from feedforward BP of the MLP with the same weights and units: the limit is the Hopfield net's."""
    net = _hopfield_net(act=act)
    x, y = batch(n=2)
    cfg = HopfieldConfig(T=400, dt=0.5)
    free = relax(net, initial_state(net, x), cfg.T, cfg.dt)
    ref = recurrent_bp(net, x, y, cfg, xs=free)
    gs = [eqprop_gradient(net, x, y, cfg, b, estimator, sign=-1.0, free=free) for b in BETAS]
    errs = [_rel(g, ref) for g in gs]
    assert order - 0.15 < _slope(BETAS, errs) < order + 0.15, errs
    assert errs[-1] < 2e-3
    assert _rel(gs[-1], bp_gradient(net, x, y)) > 0.1


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_chl_tends_to_recurrent_bp_of_its_network_as_feedback_vanishes(act):
    """CHL at feedback gamma -> recurrent BP of the gamma-network (its own prediction) and of the gamma = 0
    network, linearly in gamma. For ReLU units that limit is feedforward BP of the MLP; for tanh /
    sigmoid units it is not: the error to feedforward BP stays put."""
    net = _hopfield_net(act=act)
    x, y = batch(n=2)
    cfgs = [HopfieldConfig(T=300, dt=0.5, gamma=g) for g in BETAS]
    gs = [chl_gradient(net, x, y, c) for c in cfgs]
    own = [_rel(g, recurrent_bp(net, x, y, c)) for g, c in zip(gs, cfgs)]
    limit = recurrent_bp(net, x, y, HopfieldConfig(T=300, dt=0.5, gamma=0.0))
    to_limit = [_rel(g, limit) for g in gs]
    assert 0.85 < _slope(BETAS, own) < 1.15, own
    assert 0.85 < _slope(BETAS, to_limit) < 1.15, to_limit
    ff = _rel(gs[-1], bp_gradient(net, x, y))
    if act == "relu":
        assert _rel(limit, bp_gradient(net, x, y)) < 1e-12
    else:
        assert ff > 0.05, ff


def test_plain_chl_is_not_bp():
    """At full feedback (gamma = 1) CHL's update is far from BP: the limit is needed."""
    net = _hopfield_net(act="relu")
    x, y = batch(n=2)
    ref = recurrent_bp(net, x, y, HopfieldConfig(T=300, dt=0.5, gamma=0.0))
    assert _rel(chl_gradient(net, x, y, HopfieldConfig(T=300, dt=0.5, gamma=1.0)), ref) > 0.2


def test_eqprop_and_chl_algorithms_train_and_report_their_reference():
    from ilrepro.train import train

    spec = {
        "experiment": "t", "dataset": "digits", "model": {"type": "mlp", "hidden": [8], "activation": "sigmoid", "output_loss": "mse"},
        "batch_size": 8, "updates": 4, "eval_every": 2, "seed": 0, "lr": 0.05, "dtype": "float64", "track_bp_cosine": True,
    }
    for algo, hp in (("eqprop", {"beta": 0.01, "T": 60, "T_nudge": 40}), ("chl", {"gamma": 0.01, "T": 60, "T_nudge": 40})):
        df, meta = train({**spec, "algorithm": algo, "hparams": hp})
        assert meta["status"] == "ok"
        assert (df["bp_cosine"].dropna() > 0.95).all(), df


@pytest.mark.parametrize(("algo", "hp"), [("eqprop", {"beta": 0.01}), ("chl", {"gamma": 0.1})])
def test_hopfield_algorithms_reference_is_bp_of_their_own_free_fixed_point(algo, hp):
    """``reference_gradient`` (what ``bp_cosine`` measures against) is recurrent BP of the network the
    algorithm predicts with (its own gamma), not feedforward BP of the tanh MLP."""
    net = _hopfield_net(act="tanh")
    x, y = batch(n=2)
    a = make_algorithm(algo, net, 0.1, {**hp, "T": 300, "T_nudge": 100, "dt": 0.5})
    ref = a.reference_gradient(net, x, y)
    assert _rel(ref, recurrent_bp(net, x, y, HopfieldConfig(T=300, dt=0.5, gamma=float(hp.get("gamma", 1.0))))) < 1e-12
    assert _rel(ref, bp_gradient(net, x, y)) > 0.05
    assert cosine(a.gradient(net, x, y), ref) > 0.99


def test_ebm_agreement_table_labels_each_rows_reference():
    """Every row says what it is compared against; the EqProp / CHL rows the claims read (recurrent BP)
    shrink with the nudge, the labelled feedforward-BP rows of the sigmoid net do not."""
    from ilrepro.analyses.registry import ANALYSES, analysis_params

    kind = "millidge_ebm_agreement"
    df = ANALYSES[kind].fn(analysis_params(kind, {"hidden": [8], "n_images": 4, "seeds": [0], "betas": [0.01, 0.001], "pc_T": 100}))
    refs = dict(df.groupby("algorithm")["reference"].agg(lambda r: tuple(sorted(set(r)))))
    assert refs["PC-Nudge"] == ("feedforward_bp",) and refs["EqProp (one-sided)"] == ("recurrent_bp",)
    assert refs["EqProp (symmetric)"] == refs["CHL"] == ("feedforward_bp", "recurrent_bp")
    assert df["reference_label"].notna().all()
    err = df.groupby(["algorithm", "reference", "beta"])["rel_err"].mean()
    for algo in ("EqProp (one-sided)", "CHL"):
        assert err[(algo, "recurrent_bp", 0.001)] < 0.2 * err[(algo, "recurrent_bp", 0.01)]
    for algo in ("EqProp (symmetric)", "CHL"):
        assert err[(algo, "feedforward_bp", 0.001)] > 0.05
