"""The training loop: run length in updates, evaluation every K updates on the full test set, a tidy
metrics table per run, and a divergence stop that is a recorded result, not a crash."""

from __future__ import annotations

import math
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from . import __version__
from .algorithms import ALGORITHMS, make_algorithm
from .data import Dataset, load_dataset
from .io import atomic_write_json, atomic_write_parquet
from .models import Net, build_model

__all__ = ["train", "evaluate", "cosine", "run_and_save", "environment_meta", "DTYPES", "resolve_device"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' was asked for but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(name)


def _targets(net: Net, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """What the output is trained towards: one-hot labels, or the input itself for an autoencoder."""
    if net.meta.get("type") == "autoencoder":
        return x.flatten(1)
    return torch.nn.functional.one_hot(y, n_classes).to(x.dtype)


@torch.no_grad()
def evaluate(net: Net, data: Dataset, chunk: int = 10_000, predict: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """Feedforward evaluation on the whole test set.

    Classification: accuracy, test loss = mean_n sum_k (softmax_k - y_k)^2 (Alonso et al.), and
    cross-entropy. Autoencoder: binary cross-entropy of the reconstruction (per image).
    ``predict`` maps inputs to logits (default: the feedforward pass)."""
    predict = net.logits if predict is None else predict
    n = len(data.test_y)
    acc = loss = ce = 0.0
    for i in range(0, n, chunk):
        x, y = data.test_x[i : i + chunk], data.test_y[i : i + chunk]
        logits = predict(x)
        target = _targets(net, x, y, data.n_classes)
        k = len(y) / n
        if net.meta.get("type") == "autoencoder":
            loss += k * float(net.loss(logits, target))
        else:
            p = net.link(logits)
            acc += k * float((logits.argmax(-1) == y).to(torch.float64).mean())
            loss += k * float(((p - target) ** 2).sum(-1).mean())
            ce += k * float(net.loss(logits, target))
    if net.meta.get("type") == "autoencoder":
        return {"test_loss": loss}
    return {"test_acc": acc, "test_loss": loss, "test_ce": ce}


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Cosine similarity of two parameter-shaped lists, taken as one flat vector each."""
    dot = sum(float((x * y).sum()) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(float((x * x).sum()) for x in a))
    nb = math.sqrt(sum(float((y * y).sum()) for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else float("nan")


def _finite(net: Net) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.params)


def train(spec: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train one run described by ``spec`` (see :mod:`ilrepro.experiments`); returns the metrics table
    and the run's metadata. Divergence (a non-finite weight or test loss) stops the run early with
    ``status = 'diverged'``."""
    threads = int(spec.get("threads", 1))
    torch.set_num_threads(threads)
    device = resolve_device(spec.get("device", "cpu"))
    dtype = DTYPES[spec.get("dtype", "float32")]
    seed = int(spec["seed"])
    dcfg = spec.get("data", {})
    data = load_dataset(
        spec["dataset"], dcfg.get("dir"), bool(dcfg.get("download", False)), tuple(dcfg.get("pixel_range", (0.0, 1.0)))
    ).to(device, dtype)
    name = spec["algorithm"]
    param = ALGORITHMS[name].parameterisation if name in ALGORITHMS else "post"  # unknown: make_algorithm says so
    net = build_model(spec["model"], data.image_shape, data.n_classes, param, seed, dtype, device)
    algo = make_algorithm(name, net, float(spec["lr"]), spec.get("hparams"))

    updates, every, bsz = int(spec["updates"]), int(spec["eval_every"]), int(spec["batch_size"])
    track_bp = bool(spec.get("track_bp_cosine", False))
    track_path = bool(spec.get("track_path_length", False))  # sum of ||dtheta|| over every update
    path = 0.0
    n_train = len(data.train_y)
    if bsz > n_train:
        raise ValueError(f"batch_size {bsz} is larger than the training set ({n_train})")
    gen = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(n_train, generator=gen), 0

    predict = lambda xb: algo.logits(net, xb)  # noqa: E731
    rows: list[dict[str, float]] = [{"update": 0, **evaluate(net, data, predict=predict), "delta_norm": float("nan")}]
    if track_path:
        rows[0]["path_length"] = 0.0
    status = "ok"
    t0 = time.perf_counter()
    train_time = 0.0
    done = 0
    for u in range(1, updates + 1):
        if pos + bsz > n_train:
            perm, pos = torch.randperm(n_train, generator=gen), 0
        idx = perm[pos : pos + bsz].to(device)
        pos += bsz
        x = data.train_x[idx]
        target = _targets(net, x, data.train_y[idx], data.n_classes)
        is_eval = u % every == 0 or u == updates
        before = [w.clone() for w in net.weights] if (is_eval or track_path) else None
        bp = algo.reference_gradient(net, x, target) if is_eval and track_bp else None
        ts = time.perf_counter()
        grads = algo.step(net, x, target)
        train_time += time.perf_counter() - ts
        done = u
        if before is not None:
            delta = math.sqrt(sum(float(((w - b) ** 2).sum()) for w, b in zip(net.weights, before)))
            path += delta
        if is_eval:
            row = {"update": u, **evaluate(net, data, predict=predict), "delta_norm": delta}
            if track_path:
                row["path_length"] = path
            if bp is not None:
                row["bp_cosine"] = cosine(grads, bp)
            rows.append(row)
            if not _finite(net) or not math.isfinite(row["test_loss"]) or not math.isfinite(delta):
                status = "diverged"
                break
    wall = time.perf_counter() - t0

    df = pd.DataFrame(rows)
    df.insert(0, "seed", seed)
    df.insert(0, "lr", float(spec["lr"]))
    df.insert(0, "algo", spec.get("algo", name))
    df.insert(0, "experiment", spec.get("experiment", ""))
    df["status"] = status
    meta = {
        "spec": spec,
        "status": status,
        "updates_done": done,
        "wall_s": wall,
        "train_s": train_time,
        "updates_per_s": done / train_time if train_time > 0 else float("nan"),
        **environment_meta(device),
    }
    return df, meta


def environment_meta(device: torch.device | str) -> dict[str, Any]:
    """Where and with what a job ran: device, hardware, threads, library versions, host, SLURM job."""
    device = resolve_device(str(device))
    return {
        "device": str(device),
        "hardware": _hardware(device),
        "threads": torch.get_num_threads(),
        "versions": {
            "ilrepro": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                proc = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{proc} ({os.cpu_count()} logical CPUs)"


def run_and_save(spec: dict[str, Any], metrics_path: str | Path, meta_path: str | Path) -> str:
    """Train and write both files atomically (temp file + rename): a killed run leaves no partial file."""
    df, meta = train(spec)
    atomic_write_parquet(df, Path(metrics_path))
    atomic_write_json(meta, Path(meta_path))
    return str(meta["status"])
