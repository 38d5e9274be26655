"""The training loop: run length in updates, evaluation every K updates on the full test set, a tidy
metrics table per run, and a divergence stop that is a recorded result, not a crash."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from .algorithms import ALGORITHMS
from .data import Dataset, load_dataset
from .ensemble import Ensemble
from .io import atomic_write_json, atomic_write_parquet
from .models import Net, build_model
from .runtime import DTYPES, Progress, cosine, environment_meta, resolve_device, seeds_of, targets

__all__ = ["train", "VECTORISE_MIN_SEEDS", "evaluate", "metrics_columns", "run_and_save"]


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
        target = targets(net, x, y, data.n_classes)
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


def metrics_columns(exp: dict[str, Any]) -> set[str]:
    """The measure columns of an experiment's metrics table, known from its config: what :func:`train`
    writes (``test_acc`` only for a classifier: an autoencoder has a reconstruction loss)."""
    cols = {"update", "test_loss", "delta_norm"}
    if exp.get("model", {}).get("type", "mlp") != "autoencoder":
        cols |= {"test_acc", "test_ce"}
    if exp.get("track_path_length"):
        cols.add("path_length")
    if exp.get("track_bp_cosine"):
        cols.add("bp_cosine")
    return cols


def _finite(net: Net) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.params)


# ``vectorise: auto`` stacks the seeds from this many on: measured on CPU (digits MLP, batch 1 and 64),
# one vmapped step costs about as much as 2-3 plain ones, so 2-3 seeds break even or lose (BP: 0.6x at 2)
# and 5 seeds gain 1.5-1.9x in model-updates/s
VECTORISE_MIN_SEEDS = 4


class _Batches:
    """A member's own stream of mini-batches: a fresh permutation of the training set (from the
    member's seed) each epoch."""

    def __init__(self, n: int, bsz: int, seed: int) -> None:
        if bsz > n:
            raise ValueError(f"batch_size {bsz} is larger than the training set ({n})")
        self.n, self.bsz = n, bsz
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(n, generator=self.gen), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.bsz > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + self.bsz]
        self.pos += self.bsz
        return idx


def train(spec: dict[str, Any], progress: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train the run(s) described by ``spec`` (see :mod:`ilrepro.experiments`): one seed, or several
    seeds of one configuration together (``seeds``; ``vectorise``: true, false, or ``auto`` (default),
    vectorised from :data:`VECTORISE_MIN_SEEDS` seeds on, where the algorithm allows). Returns the metrics table (a ``seed`` column) and the metadata.

    Each seed's result is the same as training it alone. Divergence (a non-finite weight or test loss)
    stops that seed's run with ``status = 'diverged'``; the others go on. With ``progress``, every
    evaluation prints one flushed line (update, elapsed, ETA, the seeds' latest test metric)."""
    threads = int(spec.get("threads", 1))
    torch.set_num_threads(threads)
    device = resolve_device(spec.get("device", "cpu"))
    dtype = DTYPES[spec.get("dtype", "float32")]
    seeds = seeds_of(spec)
    dcfg = spec.get("data", {})
    data = load_dataset(
        spec["dataset"], dcfg.get("dir"), bool(dcfg.get("download", False)), tuple(dcfg.get("pixel_range", (0.0, 1.0))),
        bool(dcfg.get("verify", True)),
    ).to(device, dtype)
    name = spec["algorithm"]
    param = ALGORITHMS[name].parameterisation if name in ALGORITHMS else "post"  # unknown: make_algorithm says so
    nets = [build_model(spec["model"], data.image_shape, data.n_classes, param, s, dtype, device) for s in seeds]
    how = spec.get("vectorise", "auto")
    if how not in (True, False, "auto"):
        raise ValueError(f"vectorise must be true, false or 'auto', got {how!r}")
    vectorise = len(seeds) >= VECTORISE_MIN_SEEDS if how == "auto" else bool(how)
    ens = Ensemble(nets, name, float(spec["lr"]), spec.get("hparams"), vectorise)
    K = len(seeds)

    updates, every, bsz = int(spec["updates"]), int(spec["eval_every"]), int(spec["batch_size"])
    track_bp = bool(spec.get("track_bp_cosine", False))
    track_path = bool(spec.get("track_path_length", False))  # sum of ||dtheta|| over every update
    batches = [_Batches(len(data.train_y), bsz, s) for s in seeds]

    def evaluate_member(k: int) -> dict[str, float]:
        algo, net = ens.algorithm(k), ens.members[k]
        return evaluate(net, data, predict=lambda xb: algo.logits(net, xb))

    rows: list[list[dict[str, float]]] = []
    for k in range(K):
        rows.append([{"update": 0, **evaluate_member(k), "delta_norm": float("nan")}])
        if track_path:
            rows[k][0]["path_length"] = 0.0
    status = ["ok"] * K
    done = [0] * K
    path = [0.0] * K
    active = list(range(K))
    report = Progress(f"train {spec.get('experiment', '')}/{spec.get('algo', name)}/lr{float(spec['lr']):g}", updates) if progress else None
    t0 = time.perf_counter()
    train_time = 0.0
    steps = 0
    for u in range(1, updates + 1):
        xs, ys = [], []
        for k in range(K):
            idx = batches[k].next().to(device)
            x = data.train_x[idx]
            xs.append(x)
            ys.append(targets(nets[0], x, data.train_y[idx], data.n_classes))
        is_eval = u % every == 0 or u == updates
        before = {k: [w.clone() for w in ens.members[k].weights] for k in active} if (is_eval or track_path) else None
        bp = {k: ens.algorithm(k).reference_gradient(ens.members[k], xs[k], ys[k]) for k in active} if is_eval and track_bp else {}
        ts = time.perf_counter()
        grads = ens.step(xs, ys, active)
        train_time += time.perf_counter() - ts
        steps += 1
        for k in active:
            done[k] = u
        delta: dict[int, float] = {}
        if before is not None:
            for k in active:
                delta[k] = math.sqrt(sum(float(((w - b) ** 2).sum()) for w, b in zip(ens.members[k].weights, before[k])))
                path[k] += delta[k]
        if is_eval:
            for k in list(active):
                row = {"update": u, **evaluate_member(k), "delta_norm": delta[k]}
                if track_path:
                    row["path_length"] = path[k]
                if k in bp:
                    row["bp_cosine"] = cosine(grads[k], bp[k])
                rows[k].append(row)
                if not _finite(ens.members[k]) or not math.isfinite(row["test_loss"]) or not math.isfinite(delta[k]):
                    status[k] = "diverged"
                    active.remove(k)
            if report is not None:
                metric = "test_acc" if "test_acc" in rows[0][-1] else "test_loss"
                latest = [rows[k][-1][metric] for k in range(K) if rows[k][-1]["update"] == u]
                report(u, **{metric: sum(latest) / len(latest), "seeds": K, "diverged": status.count("diverged")})
            if not active:
                break
    wall = time.perf_counter() - t0

    frames = []
    for k, seed in enumerate(seeds):
        df = pd.DataFrame(rows[k])
        df.insert(0, "seed", seed)
        df.insert(0, "lr", float(spec["lr"]))
        df.insert(0, "algo", spec.get("algo", name))
        df.insert(0, "experiment", spec.get("experiment", ""))
        df["status"] = status[k]
        frames.append(df)
    model_updates = sum(done)
    meta = {
        "spec": spec,
        "status": "ok" if all(s == "ok" for s in status) else "diverged",
        "runs": [{"seed": s, "status": st, "updates_done": d} for s, st, d in zip(seeds, status, done)],
        "members": K,
        "vectorised": ens.vectorised,
        "updates_done": model_updates,
        "steps": steps,
        "wall_s": wall,
        "train_s": train_time,
        # model-updates (one model, one batch) per second of update steps, all seeds together
        "updates_per_s": model_updates / train_time if train_time > 0 else float("nan"),
        "data_files": list(data.files),  # every file read: path, sha256, how its identity was checked
        **environment_meta(device),
    }
    return pd.concat(frames, ignore_index=True), meta


def run_and_save(spec: dict[str, Any], metrics_path: str | Path, meta_path: str | Path) -> dict[str, Any]:
    """Train and write both files atomically (temp file + rename): a killed run leaves no partial file.
    Returns the metadata."""
    df, meta = train(spec)
    atomic_write_parquet(df, Path(metrics_path))
    atomic_write_json(meta, Path(meta_path))
    return meta
