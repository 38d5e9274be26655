"""Millidge et al. 2022 (paper C): energy-based models at the infinitesimal inference limit.

Kinds (each -> a tidy table, one row per measured number):

* ``millidge_energy``        (fig. A) energy components during PC inference: total, output loss, internal.
* ``millidge_nudge_sweep``   (fig. B) sweep of the output weight lam: distance of the PC equilibrium from
                             the feedforward (free) activities, and of the rescaled update from BP's.
* ``millidge_inference``     (fig. C) distance of the PC update from BP's at every inference step.
* ``millidge_ebm_agreement`` gradient agreement vs nudge for PC-Nudge, EqProp with three estimators and
                             CHL, each against BP of the same function (``reference``: feedforward BP
                             for PC, recurrent BP at the Hopfield net's free fixed point for EqProp and
                             CHL), plus labelled rows of EqProp / CHL against feedforward BP of the MLP.

Networks are MLPs in Millidge's setting (post-activation, identity output, squared error), in float64;
the data are images of the chosen data set, drawn by the initialisation's seed.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from ..algorithms import bp_gradient
from ..algorithms.ebm import chl_gradient, eqprop_gradient, pc_nudge_gradient
from ..algorithms.il import soft_clamp
from ..data import load_dataset
from ..energy import InferenceConfig, PCState, energy, infer, weight_directions
from ..hopfield import HopfieldConfig, initial_state, recurrent_bp, relax
from ..models import Net, build_model
from ..runtime import DTYPES, cosine, tracked
from .registry import register_analysis

Tensor = torch.Tensor

_COMMON: dict[str, Any] = {
    "dataset": "digits",
    "data_dir": None,
    "pixel_range": [-1.0, 1.0],
    "hidden": [32, 16],
    "activation": "relu",
    "n_images": 16,
    "seeds": [0, 1, 2, 3, 4],
    "dtype": "float64",
}


def _setup(p: dict[str, Any], seed: int) -> tuple[Net, Tensor, Tensor]:
    """A freshly initialised MLP and a batch of ``n_images`` training images drawn by ``seed``."""
    torch.manual_seed(seed)
    dtype = DTYPES[p["dtype"]]
    data = load_dataset(p["dataset"], p["data_dir"], False, tuple(p["pixel_range"]))
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(10_000 + seed))[: int(p["n_images"])]
    x = data.train_x[idx].to(dtype)
    y = torch.nn.functional.one_hot(data.train_y[idx], data.n_classes).to(dtype)
    model = {"type": "mlp", "hidden": list(p["hidden"]), "activation": p["activation"], "output_loss": "mse"}
    return build_model(model, data.image_shape, data.n_classes, "post", seed, dtype), x, y


def _sqdist(a: list[Tensor], b: list[Tensor]) -> float:
    return sum(float(((u - v) ** 2).sum()) for u, v in zip(a, b, strict=True))


def _relerr(a: list[Tensor], b: list[Tensor]) -> float:
    return math.sqrt(_sqdist(a, b) / _sqdist(b, [torch.zeros_like(v) for v in b]))


@register_analysis("millidge_energy", defaults={**_COMMON, "n_images": 1, "seeds": [0], "lam": 1.0, "dt": 0.1, "T": 50})
def energy_during_inference(p: dict[str, Any]) -> pd.DataFrame:
    """Fig. A: total energy, output loss and internal (hidden) energy at every inference step
    (PC with output weight lam; the energy is sum 1/2||e_l||^2 + lam * loss)."""
    rows = []
    lam, dt = float(p["lam"]), float(p["dt"])
    for seed in tracked(p["seeds"], rows, "seed"):
        net, x, y = _setup(p, int(seed))

        def hook(t: int, st: PCState, seed: int = int(seed)) -> None:
            for comp, v in energy(net, st, y, lam).items():
                rows.append({"seed": seed, "step": t, "component": comp, "value": v})

        infer(net, x, soft_clamp(y, lam), InferenceConfig(int(p["T"]), dt, dt), on_step=hook)
    return pd.DataFrame(rows)


@register_analysis(
    "millidge_nudge_sweep",
    defaults={**_COMMON, "seeds": list(range(10)), "lams": [0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], "dt": 0.1, "T": 50},
)
def nudge_sweep(p: dict[str, Any]) -> pd.DataFrame:
    """Fig. B: for each lam and initialisation, the squared distance of the PC equilibrium (hidden
    activities after T steps) from the feedforward pass, and sum ||g_BP - g_PC / lam||^2."""
    rows = []
    dt = float(p["dt"])
    for seed in tracked(p["seeds"], rows, "seed"):
        net, x, y = _setup(p, int(seed))
        bp = bp_gradient(net, x, y)
        with torch.no_grad():
            ff = net.forward(x)[1:-1]
        for lam in p["lams"]:
            st = infer(net, x, soft_clamp(y, float(lam)), InferenceConfig(int(p["T"]), dt, dt))
            g = [-d / float(lam) for d in weight_directions(net, st)]
            rows.append(
                {
                    "seed": int(seed),
                    "lam": float(lam),
                    "dist_free": _sqdist(st.h[1:], ff),
                    "dist_bp": _sqdist(bp, g),
                    "rel_err": _relerr(g, bp),
                    "cosine": cosine(g, bp),
                }
            )
    return pd.DataFrame(rows)


@register_analysis("millidge_inference", defaults={**_COMMON, "seeds": list(range(10)), "lam": 1.0, "dt": 0.1, "T": 100})
def distance_during_inference(p: dict[str, Any]) -> pd.DataFrame:
    """Fig. C: sum ||g_BP - g_PC / lam||^2 (and the cosine) of the PC update read at every step t."""
    rows = []
    lam, dt = float(p["lam"]), float(p["dt"])
    for seed in tracked(p["seeds"], rows, "seed"):
        net, x, y = _setup(p, int(seed))
        bp = bp_gradient(net, x, y)

        def hook(t: int, st: PCState, seed: int = int(seed)) -> None:
            g = [-d / lam for d in weight_directions(net, st)]
            rows.append({"seed": seed, "step": t, "dist_bp": _sqdist(bp, g), "rel_err": _relerr(g, bp), "cosine": cosine(g, bp)})

        infer(net, x, soft_clamp(y, lam), InferenceConfig(int(p["T"]), dt, dt), on_step=hook)
    return pd.DataFrame(rows)


# What each row of ``millidge_ebm_agreement`` is compared against: every algorithm's own function first
# (the claims test these), then feedforward BP of the MLP with the same weights and units as a labelled
# extra for the Hopfield rules (a different model wherever rho' is not 0/1: x_l = rho'(x_l) a_l != rho(a_l)).
REFERENCES: dict[str, str] = {
    "feedforward_bp": "feedforward BP of the MLP",
    "recurrent_bp": "recurrent BP (free fixed point of the Hopfield net)",
}


@register_analysis(
    "millidge_ebm_agreement",
    defaults={
        **_COMMON,
        "activation": "sigmoid",
        "seeds": [0, 1, 2],
        "betas": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001],
        "T": 50,
        "dt": 0.8,
        "pc_T": 200,
        "pc_dt": 0.3,
    },
)
def ebm_agreement(p: dict[str, Any]) -> pd.DataFrame:
    """Relative error ||g - g_ref|| / ||g_ref|| and cosine of each algorithm's rescaled update against
    BP of the function it computes, for every nudge beta (lam for PC, gamma for CHL); the ``reference``
    column names it (:data:`REFERENCES`). PC-Nudge (ReLU MLP, whose free equilibrium is the feedforward
    pass) vs feedforward BP. EqProp (one-sided, symmetric, random sign) on the Hopfield net with
    ``activation`` units vs recurrent BP: the loss gradient at its free fixed point (backprop through T
    relaxation steps from the free equilibrium = the implicit gradient). CHL with feedback gamma vs
    recurrent BP of the gamma-network it predicts with (-> the gamma = 0 network's gradient as gamma -> 0).
    Extra rows: symmetric EqProp and CHL against feedforward BP of the MLP with the same weights and
    units, which is another function unless the units are ReLU. Every Hopfield phase relaxes T steps of
    size dt; PC inference runs pc_T steps of size pc_dt."""
    rows = []
    T, dt = int(p["T"]), float(p["dt"])
    for seed in tracked(p["seeds"], rows, "seed"):
        seed = int(seed)
        pc_net, x, y = _setup({**p, "activation": "relu"}, seed)
        pc_cfg = InferenceConfig(int(p["pc_T"]), float(p["pc_dt"]), float(p["pc_dt"]))
        net, _, _ = _setup(p, seed)
        cfg = HopfieldConfig(T, dt)
        free = relax(net, initial_state(net, x), T, dt)
        refs = {"pc": bp_gradient(pc_net, x, y), "ff": bp_gradient(net, x, y), "rbp": recurrent_bp(net, x, y, cfg, xs=free)}
        sign = torch.Generator().manual_seed(seed)
        for beta in p["betas"]:
            beta = float(beta)
            s = 1.0 if torch.rand((), generator=sign) < 0.5 else -1.0
            chl_cfg = HopfieldConfig(T, dt, beta)
            sym = eqprop_gradient(net, x, y, cfg, beta, "symmetric", free=free)
            chl = chl_gradient(net, x, y, chl_cfg)
            est: list[tuple[str, list[Tensor], str, list[Tensor]]] = [
                ("PC-Nudge", pc_nudge_gradient(pc_net, x, y, beta, pc_cfg), "feedforward_bp", refs["pc"]),
                ("EqProp (one-sided)", eqprop_gradient(net, x, y, cfg, beta, "one_sided", free=free), "recurrent_bp", refs["rbp"]),
                ("EqProp (symmetric)", sym, "recurrent_bp", refs["rbp"]),
                ("EqProp (random sign)", eqprop_gradient(net, x, y, cfg, beta, "random", sign=s, free=free), "recurrent_bp", refs["rbp"]),
                ("CHL", chl, "recurrent_bp", recurrent_bp(net, x, y, chl_cfg)),
                ("EqProp (symmetric)", sym, "feedforward_bp", refs["ff"]),
                ("CHL", chl, "feedforward_bp", refs["ff"]),
            ]
            for name, g, ref_name, ref in est:
                rows.append(
                    {
                        "seed": seed,
                        "algorithm": name,
                        "reference": ref_name,
                        "reference_label": REFERENCES[ref_name],
                        "beta": beta,
                        "rel_err": _relerr(g, ref),
                        "cosine": cosine(g, ref),
                    }
                )
    return pd.DataFrame(rows)
