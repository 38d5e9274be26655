"""Paper B (Salvatori et al. 2021): Z-IL against BP in lockstep, and the cost of one update.

* ``zil_divergence``: a BP-SGD net and a net trained by another rule (Z-IL, Fa-Z-IL, an ablated Z-IL,
  standard IL) start from the same weights and see the same batches; after every update the summed
  absolute parameter difference  sum |theta_BP - theta|  is recorded, per architecture and dtype.
* ``cost_per_update``: wall time of one ``Algorithm.step`` (ms, median of repeats, algorithms
  interleaved so that a busy machine slows them alike), per architecture, with the hardware recorded.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pandas as pd
import torch

from .. import native
from ..algorithms import ALGORITHMS, make_algorithm
from ..data import Dataset, load_dataset
from ..models import build_model
from ..runtime import DTYPES, environment_meta, targets, tracked
from .registry import register_analysis

MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"type": "mlp", "hidden": [64, 32], "output_loss": "mse"},
    "cnn": {"type": "cnn", "channels": [8, 16], "kernels": [3, 3], "strides": [1, 2], "output_loss": "mse"},
    "rnn": {"type": "rnn", "hidden": [64], "output_loss": "mse"},
}


def _data(params: dict[str, Any], dtype: torch.dtype) -> Dataset:
    return load_dataset(params["dataset"], params.get("data_dir", "data"), False).to("cpu", dtype)


def _batches(data: Dataset, batch_size: int, seed: int):
    """The same endless stream of training batches for every net built with this seed."""
    n = len(data.train_y)
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]


def _model_cfg(params: dict[str, Any], arch: str) -> dict[str, Any]:
    models = {**MODELS, **params.get("models", {})}
    if arch not in models:
        raise KeyError(f"architectures: no model config for '{arch}'; give one under params.models")
    return models[arch]


# what both Z-IL analyses take: the data, the architectures (and model overrides), the batch and the seed
COMMON = {"dataset": "digits", "data_dir": "data", "architectures": ["mlp", "cnn", "rnn"], "models": {}, "batch_size": 64, "seed": 0}


@register_analysis(
    "zil_divergence",
    defaults={
        **COMMON,
        "dtypes": ["float64", "float32"],
        "variants": {"zil": {"algorithm": "zil"}},
        "updates": 200,
        "lr": 0.05,
    },
)
def zil_divergence(params: dict[str, Any]) -> pd.DataFrame:
    """Sum |theta_BP - theta_variant| after every update, BP-SGD and the variant in lockstep from the
    same initial weights and batches. A variant is ``{algorithm, hparams}`` (e.g. Z-IL with gamma 0.5)."""
    rows: list[dict[str, Any]] = []
    for dt in tracked(params["dtypes"], rows, "dtype"):
        dtype = DTYPES[dt]
        data = _data(params, dtype)
        for arch in params["architectures"]:
            cfg = _model_cfg(params, arch)
            for variant, v in params["variants"].items():
                seed = int(params["seed"])
                bp_net = build_model(cfg, data.image_shape, data.n_classes, "post", seed, dtype)
                net = build_model(cfg, data.image_shape, data.n_classes, ALGORITHMS[v["algorithm"]].parameterisation, seed, dtype)
                bp = make_algorithm("bp_sgd", bp_net, float(params["lr"]))
                algo = make_algorithm(v["algorithm"], net, float(params["lr"]), v.get("hparams"))
                batches = _batches(data, int(params["batch_size"]), seed)
                for u in range(int(params["updates"]) + 1):
                    if u > 0:
                        idx = next(batches)
                        x = data.train_x[idx]
                        target = targets(net, x, data.train_y[idx], data.n_classes)
                        bp.step(bp_net, x, target)
                        algo.step(net, x, target)
                    div = sum(float((a - b).abs().sum()) for a, b in zip(bp_net.params, net.params))
                    rows.append({"architecture": arch, "dtype": dt, "variant": variant, "algorithm": v["algorithm"], "update": u, "divergence": div})
    return pd.DataFrame(rows)


@register_analysis(
    "cost_per_update",
    defaults={
        **COMMON,
        "dtype": "float32",
        "algorithms": {
            "bp_sgd": {"algorithm": "bp_sgd"},
            "zil": {"algorithm": "zil"},
            "fa_zil": {"algorithm": "fa_zil"},
            "il_sgd": {"algorithm": "il_sgd"},
        },
        "lr": 0.01,
        "repeats": 50,
        "warmup": 5,
        "device": "cpu",
        "native": False,
    },
)
def cost_per_update(params: dict[str, Any]) -> pd.DataFrame:
    """Milliseconds per update (one ``Algorithm.step`` on a batch), median over repeats, for every
    algorithm on every architecture; the algorithms take turns within each repeat, and the cost relative
    to the first algorithm listed is the median of the per-repeat ratios.

    ``native: false`` (the default) times every algorithm on the pure-torch path: the paper's claim
    compares the algorithms' cost, and the native fast path (ilrepro.native) serves BP and IL on an MLP
    but not Z-IL, so with it the ratio would compare two kinds of implementation instead."""
    dtype = DTYPES[params["dtype"]]
    device = torch.device(params["device"])
    data = _data(params, dtype).to(device, dtype)
    env = environment_meta(device)
    rows: list[dict[str, Any]] = []
    with native.disabled(not params["native"]):
        for arch in tracked(params["architectures"], rows, "architecture"):
            rows += _costs_of(params, arch, data, dtype, device, env)
    return pd.DataFrame(rows)


def _costs_of(params: dict[str, Any], arch: str, data: Dataset, dtype: torch.dtype, device: torch.device, env: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`cost_per_update`'s rows for one architecture."""
    rows: list[dict[str, Any]] = []
    cfg = _model_cfg(params, arch)
    seed = int(params["seed"])
    runs = {}
    for label, a in params["algorithms"].items():
        net = build_model(cfg, data.image_shape, data.n_classes, ALGORITHMS[a["algorithm"]].parameterisation, seed, dtype, device)
        runs[label] = (net, make_algorithm(a["algorithm"], net, float(params["lr"]), a.get("hparams")), a["algorithm"])
    batches = _batches(data, int(params["batch_size"]), seed)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(int(params["warmup"]) + int(params["repeats"])):
        idx = next(batches).to(device)
        x = data.train_x[idx]
        for label, (net, algo, _) in runs.items():
            target = targets(net, x, data.train_y[idx], data.n_classes)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            algo.step(net, x, target)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if r >= int(params["warmup"]):
                times[label].append(1e3 * (time.perf_counter() - t0))
    ref = times[next(iter(runs))]  # the first algorithm listed (BP) is the reference
    for label, (_, _, name) in runs.items():
        ts = times[label]
        rows.append(
            {
                "architecture": arch,
                "algo": label,
                "algorithm": name,
                "ms_median": statistics.median(ts),
                "ms_q25": statistics.quantiles(ts, n=4)[0],
                "ms_q75": statistics.quantiles(ts, n=4)[2],
                # median over repeats of this repeat's time over the reference's in the same repeat:
                # robust to a machine whose load drifts during the measurement
                "ratio_to_ref": statistics.median(t / r for t, r in zip(ts, ref)),
                "reference": next(iter(runs)),
                "repeats": len(ts),
                "batch_size": int(params["batch_size"]),
                "dtype": params["dtype"],
                "device": env["device"],
                "hardware": env["hardware"],
                "threads": env["threads"],
                "path": "native where it serves" if params["native"] else "pure torch",
            }
        )
    return rows
