"""Training-speed benchmark: updates per second of every registered algorithm on every benchmark model.

The protocol is the issue's (and the one the authors' code and pcx were timed under): one torch thread,
a fixed number of updates at a given batch size, evaluation on the full test set every ``eval_every``
updates. Each (model, algorithm, batch size) cell is one real :func:`ilrepro.train.train` run, so what
is timed is exactly what the pipeline trains; ``updates_per_s`` counts the wall time of the training
loop *including* its evaluations (the protocol's number), ``train_updates_per_s`` the update steps
alone. Cells whose algorithm is not registered, or whose algorithm cannot train that model (it raises),
are recorded with ``status = skipped`` and the reason, never a crash.

Also reported: the cost ratios IL/BP and Z-IL/BP (time per update relative to BP-SGD on the same model
and batch size; Z-IL appears once an algorithm named ``zil`` is registered), peak resident memory of the
process, and the hardware (:func:`ilrepro.train.environment_meta`).
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import pandas as pd
import torch

from .algorithms import ALGORITHMS
from .train import environment_meta, train

__all__ = ["DEFAULTS", "MODELS", "bench", "ratios", "peak_rss_mb"]

# The benchmark's models: the papers' MLP (784-256-256-10 on Fashion-MNIST) and a small CNN. A model
# type the build does not know (e.g. an RNN before it is merged) is recorded as skipped.
MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"type": "mlp", "hidden": [256, 256]},
    "cnn": {"type": "cnn", "channels": [16, 32], "kernels": [3, 3], "strides": [1, 2]},
    "rnn": {"type": "rnn", "hidden": 128},
}

DEFAULTS: dict[str, Any] = {
    "dataset": "fashion_mnist",
    "fallback_dataset": "digits",  # used when the data set's files are not on disk
    "models": ["mlp", "cnn", "rnn"],
    "algorithms": ["bp_sgd", "bp_adam", "il_sgd", "il_adam", "il_prox", "il_prox_fast", "il_prox_adam", "bp_prox", "zil"],
    "batch_sizes": [1, 64],
    "updates": 500,
    "eval_every": 50,
    "lr": {"default": 0.01, "il_prox": 1.0, "il_prox_fast": 1.0, "bp_prox": 1.0},
    "hparams": {},  # algorithm -> hyper-parameters (e.g. {il_sgd: {T: 25}})
    "seed": 0,
    "threads": 1,
    "device": "cpu",
    "dtype": "float32",
    "data": {},
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def _dataset(cfg: dict[str, Any]) -> str:
    from .data import DatasetError, load_dataset

    try:
        dcfg = cfg.get("data", {})
        load_dataset(cfg["dataset"], dcfg.get("dir"), False, tuple(dcfg.get("pixel_range", (0.0, 1.0))))
        return str(cfg["dataset"])
    except DatasetError:
        if not cfg.get("fallback_dataset"):
            raise
        return str(cfg["fallback_dataset"])


def _cell(cfg: dict[str, Any], dataset: str, model: str, algo: str, bsz: int) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "algorithm": algo, "batch_size": bsz, "dataset": dataset}
    if algo not in ALGORITHMS:
        return {**row, "status": "skipped", "reason": f"algorithm '{algo}' is not registered"}
    lrs = cfg.get("lr", {})
    spec = {
        "experiment": "bench",
        "algorithm": algo,
        "dataset": dataset,
        "data": cfg.get("data", {}),
        "model": {**MODELS.get(model, {"type": model}), **cfg.get("model_overrides", {}).get(model, {})},
        "lr": float(lrs.get(algo, lrs.get("default", 0.01))),
        "hparams": cfg.get("hparams", {}).get(algo, {}),
        "seed": int(cfg["seed"]),
        "batch_size": bsz,
        "updates": int(cfg["updates"]),
        "eval_every": int(cfg["eval_every"]),
        "threads": int(cfg["threads"]),
        "device": cfg["device"],
        "dtype": cfg["dtype"],
    }
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        df, meta = train(spec)
    except Exception as err:  # noqa: BLE001 — a combination that cannot run is a recorded result
        return {**row, "status": "skipped", "reason": f"{type(err).__name__}: {err}"}
    done = int(meta["updates_done"])
    wall = float(meta["wall_s"])
    out = {
        **row,
        "status": "ok" if meta["status"] == "ok" else str(meta["status"]),
        "reason": "",
        "updates": done,
        "eval_every": int(cfg["eval_every"]),
        "n_evals": int(len(df) - 1),
        "wall_s": wall,
        "train_s": float(meta["train_s"]),
        "updates_per_s": done / wall if wall > 0 else float("nan"),
        "ms_per_update": 1e3 * wall / done if done else float("nan"),
        "train_updates_per_s": float(meta["updates_per_s"]),
        "train_ms_per_update": 1e3 * float(meta["train_s"]) / done if done else float("nan"),
        "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan"),
        "final_test_acc": float(df["test_acc"].iloc[-1]) if "test_acc" in df else float("nan"),
    }
    return out


def ratios(table: pd.DataFrame, base: str = "bp_sgd", against: tuple[str, ...] = ("il_sgd", "zil")) -> pd.DataFrame:
    """Time per training update of each algorithm in ``against`` relative to ``base`` on the same model
    and batch size (from the update steps alone, so evaluation does not dilute the ratio)."""
    ok = table[table["status"] == "ok"]
    rows = []
    for (model, bsz), g in ok.groupby(["model", "batch_size"]):
        t = dict(zip(g["algorithm"], g["train_ms_per_update"]))
        for a in against:
            if a in t and base in t:
                rows.append({"model": model, "batch_size": bsz, "ratio": f"{a}/{base}", "value": t[a] / t[base]})
    return pd.DataFrame(rows, columns=["model", "batch_size", "ratio", "value"])


def bench(cfg: dict[str, Any] | None = None, log=print) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Run every (model, algorithm, batch size) cell; returns (table, ratios, metadata)."""
    c = {**DEFAULTS, **(cfg or {})}
    unknown = set(c) - set(DEFAULTS) - {"model_overrides"}
    if unknown:
        raise ValueError(f"bench: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(DEFAULTS))}")
    torch.set_num_threads(int(c["threads"]))
    dataset = _dataset(c)
    rows = []
    t0 = time.perf_counter()
    for model in c["models"]:
        for bsz in c["batch_sizes"]:
            for algo in c["algorithms"]:
                row = _cell(c, dataset, model, algo, int(bsz))
                rows.append(row)
                if log is not None:
                    speed = f"{row['updates_per_s']:.0f} updates/s" if row["status"] == "ok" else row["reason"]
                    log(f"{model:4s} B={bsz:<3d} {algo:14s} {row['status']:8s} {speed}")
    table = pd.DataFrame(rows)
    meta = {"config": c, "dataset": dataset, "bench_s": time.perf_counter() - t0, **environment_meta(c["device"])}
    return table, ratios(table), meta
