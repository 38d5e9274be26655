"""Alonso et al. 2022, E6: the theory figures (IL approximates implicit SGD).

* ``prox_objective``   — the proximal objective P(theta') = L(theta') + ||theta' - theta||^2 / (2 alpha)
  after one update: BP-SGD, the exact implicit-SGD optimum, and IL-prox with its weights updated at
  inference step t = 0..T, in four panels (feedforward or random initialisation of the hidden nodes;
  the implicit-SGD output target or the label fully clamped).
* ``update_alignment`` — during online training (several seeds), the cosine of an IL algorithm's update
  (standard IL, as in the paper, and IL-prox) to the exact implicit-SGD update and to the BP update on the
  same sample, and of the two references to each other; overall and per layer; with the accuracy of the
  implicit-SGD solve (its distance to a solve of the softplus-smoothed problem).
* ``target_activity``  — the target activities an IL update aims at vs the activities the network
  produces for the same input after the update: cos and distance per layer (before: the distance from
  the pre-update activities, for scale).
* ``toy_alignment``    — function-space alignment on small random networks: the cosine between the
  output change an update produces and the output change of the minimum-norm parameter change that
  reaches the target (which, linearised, is the target direction y - z itself), vs alpha, linear and
  ReLU networks, squared loss.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import pandas as pd
import torch

from ..algorithms import ALGORITHMS, make_algorithm
from ..algorithms import bp_gradient
from ..algorithms.il import hard_clamp
from ..algorithms.prox import il_prox_update, implicit_sgd_error, implicit_sgd_solve, prox_target
from ..data import load_dataset
from ..energy import InferenceConfig, PCState, infer
from ..models import Net, build_model
from ..runtime import DTYPES, cosine, seeds_of, targets, tracked
from .registry import register_analysis

Tensor = torch.Tensor

COMMON = {"dataset": "digits", "hidden": [64, 64], "dtype": "float64", "seed": 0}


def _setup(p: dict[str, Any], parameterisation: str = "pre") -> tuple[Net, Any, torch.dtype]:
    dtype = DTYPES[p["dtype"]]
    data = load_dataset(p["dataset"]).to("cpu", dtype)
    net = build_model({"type": "mlp", "hidden": list(p["hidden"])}, data.image_shape, data.n_classes, parameterisation, int(p["seed"]), dtype)
    return net, data, dtype


def _prox_value(net: Net, x: Tensor, y: Tensor, theta: list[Tensor], phi: list[Tensor], alpha: float) -> float:
    with torch.no_grad():
        move = sum(float(((a - b) ** 2).sum()) for a, b in zip(phi, theta))
        return float(net.loss(net.logits(x, phi), y)) + move / (2 * alpha)


@register_analysis("prox_objective", {**COMMON, "alpha": 1.0, "eps": 0.0, "T": 25, "gamma": 0.015, "samples": 20, "random_init_scale": 1.0})
def prox_objective(p: dict[str, Any]) -> pd.DataFrame:
    """P after one update: BP-SGD, implicit SGD, and IL-prox updated at inference step t."""
    net, data, dtype = _setup(p)
    alpha, eps = float(p["alpha"]), float(p["eps"])
    cfg = InferenceConfig(int(p["T"]), float(p["gamma"]), float(p["gamma"]))
    gen = torch.Generator().manual_seed(int(p["seed"]) + 1)
    idx = torch.randperm(len(data.train_y), generator=gen)[: int(p["samples"])]
    theta = [q.detach() for q in net.params]
    rows: list[dict[str, Any]] = []
    for i, k in tracked(enumerate(idx.tolist()), rows, "example"):
        x = data.train_x[k : k + 1]
        y = targets(net, x, data.train_y[k : k + 1], data.n_classes)
        base = {"sample": i}
        rows.append({**base, "method": "no update", "t": None, "P": _prox_value(net, x, y, theta, theta, alpha)})
        bp = [t - alpha * g for t, g in zip(theta, bp_gradient(net, x, y))]
        rows.append({**base, "method": "BP-SGD", "t": None, "P": _prox_value(net, x, y, theta, bp, alpha)})
        phi, res = implicit_sgd_solve(net, x, y, alpha, tol=1e-7)
        rows.append({**base, "method": "implicit SGD", "t": None, "P": _prox_value(net, x, y, theta, phi, alpha), "residual": res})
        for init in ("FF", "random"):
            with torch.no_grad():
                h = net.forward(x)[:-1]
            if init == "random":
                h = [h[0]] + [float(p["random_init_scale"]) * torch.randn(v.shape, generator=gen, dtype=dtype) for v in h[1:]]
            for clamp in ("prox target", "full clamp"):
                tf = prox_target(y, alpha, eps) if clamp == "prox target" else hard_clamp(y)
                panel = f"{init} init" + (" + full clamp" if clamp == "full clamp" else "")

                def hook(t: int, st: PCState, panel: str = panel) -> None:
                    upd = [q + d for q, d in zip(theta, il_prox_update(net, st, eps))]
                    rows.append({**base, "method": "IL-prox", "panel": panel, "t": t, "P": _prox_value(net, x, y, theta, upd, alpha)})

                infer(net, x, tf, cfg, h=h, on_step=hook)
    return pd.DataFrame(rows)


def _online(p: dict[str, Any], name: str, alpha: float) -> Iterator[tuple[int, Net, Any, Tensor, Tensor]]:
    """Online (B=1) training of one algorithm on random training samples: yields (update index, net,
    algorithm, x, target) *before* each update; the caller applies it with ``algo.step``."""
    net, data, _ = _setup(p, ALGORITHMS[name].parameterisation)
    algo = make_algorithm(name, net, alpha)
    gen = torch.Generator().manual_seed(int(p["seed"]))
    order = torch.randint(0, len(data.train_y), (int(p["updates"]),), generator=gen)
    for u, k in enumerate(order.tolist()):
        x = data.train_x[k : k + 1]
        yield u, net, algo, x, targets(net, x, data.train_y[k : k + 1], data.n_classes)


def _layer_cosines(a: list[Tensor], b: list[Tensor]) -> dict[str, float]:
    """cos(a, b) over every parameter ("all") and over each layer's [W_l, b_l] ("layer l")."""
    out = {"all": cosine(a, b)}
    for l in range(len(a) // 2):
        out[f"layer {l}"] = cosine(a[2 * l : 2 * l + 2], b[2 * l : 2 * l + 2])
    return out


@register_analysis(
    "update_alignment",
    {**{k: v for k, v in COMMON.items() if k != "seed"}, "seeds": [0, 1, 2], "algorithms": {"il_sgd": 0.05, "il_prox": 2.5},
     "updates": 1000, "every": 50, "tol": 1e-7, "smooth_beta": 1e4, "smooth_tol": 1e-9, "smooth_max_iter": 5000, "solver_check_every": 1},
)
def update_alignment(p: dict[str, Any]) -> pd.DataFrame:
    """Online training of each IL algorithm (name -> alpha), each seed; every ``every`` updates, on the
    same sample, the IL update against the exact implicit-SGD update (same alpha, same parameterisation)
    and BP-SGD's: cos_implicit = cos(IL, implicit), cos_bp = cos(IL, BP) and the baseline
    cos_bp_implicit = cos(BP, implicit) — how far apart the two references are, i.e. how much the test
    can tell them apart. One row per (point, ``layer``): "all" (every parameter, the paper's measure) and
    "layer l" (layer l's weights and biases).

    The implicit solve's accuracy (the same on every row of a point): solver_rel_dist and solver_cos of its
    update to the update of the softplus(smooth_beta)-smoothed problem solved to smooth_tol
    (:func:`~ilrepro.algorithms.prox.implicit_sgd_error`), and solver_residual, the ReLU solve's own
    gradient norm (not an accuracy: it stays large at a kink of ReLU however accurate the solve). The
    smoothed solve costs several times the solve itself (about a minute per point on an MNIST MLP, one
    CPU thread): it is made at every ``solver_check_every``-th point, and the accuracy columns of the
    other points are NaN (not measured)."""
    rows: list[dict[str, Any]] = []
    runs = [(name, float(alpha), seed) for name, alpha in p["algorithms"].items() for seed in seeds_of(p)]
    for name, alpha, seed in tracked(runs, rows, "run"):
        for u, net, algo, x, y in _online({**p, "seed": seed}, name, alpha):
            if u % int(p["every"]) == 0:
                il = [-g for g in algo.gradient(net, x, y)]  # (cosines are scale-free: no step size needed)
                bp = [-alpha * g for g in bp_gradient(net, x, y)]
                phi, res = implicit_sgd_solve(net, x, y, alpha, tol=float(p["tol"]))
                imp = [a - b for a, b in zip(phi, net.params)]
                if (u // int(p["every"])) % int(p["solver_check_every"]) == 0:
                    acc = implicit_sgd_error(net, x, y, alpha, phi, float(p["smooth_beta"]), float(p["smooth_tol"]), int(p["smooth_max_iter"]))
                else:
                    acc = dict.fromkeys(("solver_rel_dist", "solver_cos", "smooth_residual"), float("nan"))
                point = {"algorithm": name, "alpha": alpha, "seed": seed, "update": u}
                cos_imp, cos_bp, cos_base = _layer_cosines(il, imp), _layer_cosines(il, bp), _layer_cosines(bp, imp)
                for layer in cos_imp:
                    rows.append({**point, "layer": layer, "cos_implicit": cos_imp[layer], "cos_bp": cos_bp[layer],
                                 "cos_bp_implicit": cos_base[layer], **acc, "solver_residual": res})
            algo.step(net, x, y)
    return pd.DataFrame(rows)


@register_analysis("target_activity", {**COMMON, "algorithms": {"il_prox": 2.5, "il_sgd": 0.05}, "updates": 300, "every": 10})
def target_activity(p: dict[str, Any]) -> pd.DataFrame:
    """How close the network's activities come to the inferred targets after an update on the same input."""
    rows: list[dict[str, Any]] = []
    for name, alpha in tracked(p["algorithms"].items(), rows, "algorithm"):
        for u, net, algo, x, y in _online(p, name, float(alpha)):
            if u % int(p["every"]) != 0:
                algo.step(net, x, y)
                continue
            with torch.no_grad():
                before = net.forward(x)
            state = infer(net, x, algo.target_fn(y), algo.inference_config())
            inferred = state.h[1:] + [state.target]
            algo.step(net, x, y)  # the same inference again, then the update
            with torch.no_grad():
                after = net.forward(x)
            for l, tgt in enumerate(inferred, start=1):
                out = l == net.n_layers
                a, b = (net.link(after[l]), net.link(before[l])) if out else (after[l], before[l])
                rows.append({"algorithm": name, "alpha": float(alpha), "update": u, "layer": "output" if out else f"hidden {l}",
                             "cos_after": cosine([tgt], [a]), "dist_after": float((tgt - a).norm()),
                             "dist_before": float((tgt - b).norm())})
    return pd.DataFrame(rows)


@register_analysis(
    "toy_alignment",
    {"n_in": 20, "hidden": [30, 30], "n_out": 5, "alphas": [0.01, 0.1, 1.0, 10.0, 100.0], "samples": 200,
     "T": 50, "gamma": 0.05, "dtype": "float64", "seed": 0},
)
def toy_alignment(p: dict[str, Any]) -> pd.DataFrame:
    """cos(dz_method, dz_min-norm) on random toy networks (a new network and sample each time)."""
    dtype = DTYPES[p["dtype"]]
    gen = torch.Generator().manual_seed(int(p["seed"]))
    rows: list[dict[str, Any]] = []
    cfg = InferenceConfig(int(p["T"]), float(p["gamma"]), float(p["gamma"]))
    for net_type, act in tracked((("linear", "identity"), ("ReLU", "relu")), rows, "network"):
        for s in range(int(p["samples"])):
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
            net = build_model({"type": "mlp", "hidden": list(p["hidden"]), "activation": act, "output_loss": "mse"},
                              (1, 1, int(p["n_in"])), int(p["n_out"]), "pre", seed, dtype)
            x = torch.randn(1, 1, 1, int(p["n_in"]), generator=gen, dtype=dtype)
            y = torch.randn(1, int(p["n_out"]), generator=gen, dtype=dtype)
            with torch.no_grad():
                z = net.logits(x)
            min_norm = [y - z]  # direction of the output change of the min-norm step to the target
            for alpha in p["alphas"]:
                alpha = float(alpha)
                bp = [q - alpha * g for q, g in zip(net.params, bp_gradient(net, x, y))]
                st = infer(net, x, prox_target(y, alpha, 0.0), cfg)
                il = [q + d for q, d in zip(net.params, il_prox_update(net, st, 0.0))]
                for method, phi in (("BP-SGD", bp), ("IL-prox", il)):
                    with torch.no_grad():
                        dz = net.logits(x, phi) - z
                    c = cosine([dz], min_norm)
                    rows.append({"net": net_type, "alpha": alpha, "sample": s, "method": method,
                                 "cos": c if math.isfinite(c) else float("nan")})
    return pd.DataFrame(rows)
