"""The training loop: run length in updates, evaluation every K updates on the full test set, a tidy
metrics table per run, and a divergence stop that is a recorded result, not a crash.

The metrics table has one row per evaluation; with ``track_bp_cosine`` it has one row per update (the
per-batch record of Millidge et al.): every row has the update's agreement with the reference gradient
on its batch and the batch's training accuracy and loss, and the test measures only at evaluations
(NaN between them)."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from . import first_layer, native
from .algorithms import ALGORITHMS
from .data import Dataset, load_configured
from .ensemble import CudaGraphStep, Ensemble
from .io import atomic_write_json, atomic_write_parquet
from .models import Net, build_model
from .runtime import DTYPES, Progress, environment_meta, gradient_agreement, lrs_of, resolve_device, seeds_of, targets

__all__ = ["train", "STACK_MIN_MEMBERS", "STACK_MAX_WORK", "stack_members", "eval_chunk", "evaluate", "batch_measures", "metrics_columns", "run_and_save",
           "split_by_lr"]


def eval_chunk(device: torch.device) -> int:
    """Test images per forward pass of an evaluation. CPU: 1,000, so that a layer's activities (1,000 x
    1,024 floats, 4 MB) stay in the core's caches between the GEMMs; measured on one thread (Intel Xeon,
    2026-12-02) against 10,000 at once: 784-256-256-10 77 -> 64 ms, the CIFAR MLP 950 -> 884 ms, the
    measures equal to 2e-7. CUDA: the whole test set (one launch per layer)."""
    return 10_000 if device.type == "cuda" else 1_000


@torch.no_grad()
def evaluate(net: Net, data: Dataset, chunk: int | None = None, predict: Callable[[torch.Tensor], torch.Tensor] | None = None,
             front: first_layer.FirstLayer | None = None) -> dict[str, float]:
    """Feedforward evaluation on the whole test set, ``chunk`` images a pass (default :func:`eval_chunk`).

    Classification: accuracy, test loss = mean_n sum_k (softmax_k - y_k)^2 (Alonso et al.), and
    cross-entropy. Autoencoder: binary cross-entropy of the reconstruction (per image).
    ``predict`` maps inputs to logits (default: the feedforward pass); ``front``: the feedforward pass
    from a first layer kept up to date (:mod:`ilrepro.first_layer`) instead."""
    predict = net.logits if predict is None else predict
    n = len(data.test_y)
    chunk = eval_chunk(data.test_x.device) if chunk is None else chunk
    if front is not None:
        front.sync(net)
        front = front if front.on else None  # off (an update outside the span): the plain evaluation
    acc = loss = ce = 0.0
    for i in range(0, n, chunk):
        x, y = data.test_x[i : i + chunk], data.test_y[i : i + chunk]
        logits = front.logits(net, i, i + len(y)) if front is not None else predict(x)
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


@torch.no_grad()
def batch_measures(algo: Any, net: Net, x: torch.Tensor, target: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    """The model's prediction on a training batch (``algo.logits``: the feedforward pass, or e.g. a
    Hopfield network's free equilibrium), taken before the update: ``train_loss``, the batch-mean
    training loss of the model (``net.loss``), and ``train_acc`` where ``labels`` are given."""
    logits = algo.logits(net, x)
    out = {"train_loss": net.loss(logits, target)}
    if labels is not None:
        out["train_acc"] = (logits.argmax(-1) == labels).to(torch.float64).mean()
    values = torch.stack([v.to(torch.float64) for v in out.values()]).tolist()
    return dict(zip(out, values))


# per update with ``track_bp_cosine``: the cosine of the update direction (the gradient estimate handed
# to the optimiser) to the reference gradient on the same batch, per weight matrix averaged over layers
# and over all parameters flattened; the squared distance between the two; the batch's training measures
BP_COLUMNS = {"layers": "bp_cosine", "flat": "bp_cosine_flat", "sqdist": "bp_sqdist"}


def metrics_columns(exp: dict[str, Any]) -> set[str]:
    """The measure columns of an experiment's metrics table, known from its config: what :func:`train`
    writes (``test_acc`` only for a classifier: an autoencoder has a reconstruction loss)."""
    classifier = exp.get("model", {}).get("type", "mlp") != "autoencoder"
    cols = {"update", "test_loss", "delta_norm", "delta_norm_first"}
    if classifier:
        cols |= {"test_acc", "test_ce"}
    if exp.get("track_path_length"):
        cols |= {"path_length", "delta_norm_max"}
    if exp.get("track_bp_cosine"):
        cols |= set(BP_COLUMNS.values()) | {"train_loss"} | ({"train_acc"} if classifier else set())
    return cols


def _finite(net: Net) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.params)


# When a job's members (learning rates x seeds) are stacked (``stack: auto``, the default). Measured on
# one CPU thread of the development VM (2026-12-01, shared with other jobs: +-20 %), model-updates/s of
# the update steps, stacked (vmap) over one by one, members 2 / 6 / 12 / 30:
#   digits MLP 64-64-64-10, B=1:   BP-SGD 0.52 / 1.09 / 2.2 / 4.1   IL-SGD 0.82 / 2.2 / 3.9 / 8.8   IL-prox 0.85 / 2.2 / 4.3 / 7.6
#   digits MLP 64-64-64-10, B=64:  BP-SGD 0.44 / 1.09 / 1.5 / 2.3   IL-SGD 0.84 / 0.91 / 1.2 / 1.4  IL-prox 1.2 / 0.96 / 1.4 / 1.2
#   MLP 784-256-256-10, B=1:       BP-SGD 0.66 / 1.3 / 1.5 / 1.8    IL-SGD 0.84 / 1.01 / 1.1 / 1.5  IL-prox 0.79 / 1.2 / 1.4 / 1.5
#   MLP 784-256-256-10, B=64:      BP-SGD 0.85 / 1.4 / 1.2 / 1.2    IL-SGD 0.74 / 0.87 / 1.1 / 0.82 IL-prox 0.82 / 1.0 / 1.0 / 0.90
#   MLP 3072-1024-1024-1024-10, B=1, 6 members: BP-SGD 0.72, IL-SGD 0.86 (memory-bound: no gain)
# (workflow/scripts/stacking_cpu_measure.py measures them again)
# Two members always lose (one vmapped step costs about 2-3 plain ones); from 6 on, stacking gains where
# a step is bound by per-operation overhead (small models, or batch 1), and is even at best where it is
# bound by arithmetic or memory (784-256-256-10 at B=64: 17M weight x example products per pass).
# The rule: stack from STACK_MIN_MEMBERS members when batch_size x weights <= STACK_MAX_WORK: the digits
# MLP (8.8k weights) up to B=450, 784-256-256-10 (269k) up to B=14, the CIFAR-10 MLP (5.3M) never. On
# CUDA (launch-bound at these sizes): always.
# Those are against one-by-one training on the pure-torch path. Where the native fast path
# (ilrepro.native, which does not run under vmap) trains each member alone, it wins at every size
# measured (same script, 2026-12-01, with the native path merged; a loaded VM): stacked over native
# one by one, members 2 / 6 / 12 / 30, digits MLP B=1: BP-SGD 0.03 / 0.20 / 0.62 / 0.52, IL-SGD
# 0.02 / 0.15 / 0.10 / 0.63, IL-prox 0.03 / 0.04 / 0.15 / 0.26; 784-256-256-10 B=1: BP-SGD 0.19 / 0.52
# / 0.65 / 1.38, IL-SGD 0.23 / 0.34 / 0.52 / 0.43; B=64: all 0.19-0.97. So on a CPU `auto` stacks only
# what the native path does not serve (CNN and RNN models, algorithms without a native step, no compiler).
STACK_MIN_MEMBERS = 6
STACK_MAX_WORK = 4_000_000


def stack_members(how: bool | str, n_members: int, batch_size: int, n_weights: int, device: torch.device, native_alone: bool = False) -> bool:
    """Whether a job's members train as one stacked model (where the algorithm allows): ``how`` is the
    config's ``stack`` (true, false, or ``auto``: always on CUDA; on a CPU by the measured rule above,
    and never where the native fast path trains each member alone, ``native_alone``)."""
    if how not in (True, False, "auto"):
        raise ValueError(f"stack (vectorise) must be true, false or 'auto', got {how!r}")
    if how != "auto":
        return bool(how)
    if device.type == "cuda":
        return True
    if native_alone:
        return False
    return n_members >= STACK_MIN_MEMBERS and batch_size * n_weights <= STACK_MAX_WORK


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


def _cuda_graph(ens: Ensemble, data: Dataset, bsz: int, spec: dict[str, Any]) -> tuple[CudaGraphStep | None, str]:
    """The captured step where it applies (``cuda_graph``: auto, the default, or false), else None and why."""
    want = spec.get("cuda_graph", "auto")
    if want is False or not CudaGraphStep.supported(ens):
        return None, "off" if want is False else "not applicable (needs a stacked job on CUDA with an SGD or no optimiser)"
    net = ens.template

    def make_targets(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return targets(net, x, y, data.n_classes)

    try:
        return CudaGraphStep(ens, data.train_x, make_targets, data.train_y, bsz), "captured"
    except Exception as err:  # noqa: BLE001 - a capture that fails falls back to the eager stacked step, recorded
        warnings.warn(f"CUDA graph capture failed, training with the eager stacked step: {type(err).__name__}: {err}", stacklevel=2)
        return None, f"capture failed: {type(err).__name__}: {err}"


def train(spec: dict[str, Any], progress: bool = True, data: Dataset | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train the runs described by ``spec`` (see :mod:`ilrepro.experiments`): every learning rate
    (``lrs``, or one ``lr``) x every seed (``seeds``, or one ``seed``) of one algorithm entry, as
    members of one job; stacked into one model where the algorithm allows and ``stack`` (alias
    ``vectorise``: true, false or ``auto``, the default, :func:`stack_members`) says so. Returns the
    metrics table (``lr`` and ``seed`` columns) and the job's metadata. ``data``: an already loaded data
    set on the spec's device (the benchmarks' random data), instead of the spec's.

    Each member's result is the same as training it alone. Divergence (a non-finite weight or test loss)
    stops that member's run with ``status = 'diverged'``; the others go on. With ``progress``, every
    evaluation prints one flushed line (update, elapsed, ETA, the members' mean latest test metric)."""
    threads = int(spec.get("threads", 1))
    torch.set_num_threads(threads)
    device = resolve_device(spec.get("device", "cpu"))
    dtype = DTYPES[spec.get("dtype", "float32")]
    seeds = seeds_of(spec)
    lrs = lrs_of(spec)
    members = [(lr, s) for lr in lrs for s in seeds]  # lr-major: a learning rate's members are adjacent
    data = load_configured(spec["dataset"], spec.get("data", {})).to(device, dtype) if data is None else data
    name = spec["algorithm"]
    param = ALGORITHMS[name].parameterisation if name in ALGORITHMS else "post"  # unknown: make_algorithm says so
    nets = [build_model(spec["model"], data.image_shape, data.n_classes, param, s, dtype, device) for _, s in members]
    updates, every, bsz = int(spec["updates"]), int(spec["eval_every"]), int(spec["batch_size"])
    n_weights = sum(p.numel() for p in nets[0].params)
    native_alone = name in ALGORITHMS and native.serves(nets[0], ALGORITHMS[name], spec.get("hparams"))
    stack = stack_members(spec.get("stack", spec.get("vectorise", "auto")), len(members), bsz, n_weights, device, native_alone)
    ens = Ensemble(nets, name, [lr for lr, _ in members], spec.get("hparams"), stack)
    K = len(members)

    # every update: its agreement with the reference gradient and the batch's training measures (eager
    # steps, member by member; so no captured CUDA graph)
    track_bp = bool(spec.get("track_bp_cosine", False))
    classifier = nets[0].meta.get("type") != "autoencoder"
    # sum of ||dtheta|| over every update, and its running maximum (the explosive first steps count)
    track_path = bool(spec.get("track_path_length", False))
    batches = [_Batches(len(data.train_y), bsz, s) for _, s in members]
    graph, graph_status = _cuda_graph(ens, data, bsz, spec) if not track_bp else (None, "off (track_bp_cosine measures every update eagerly)")
    # evaluation batched across members: on CUDA (``batched_eval: auto``), or where the spec says true
    want_batched = spec.get("batched_eval", "auto")
    batched_eval = ens.vectorised and (device.type == "cuda" if want_batched == "auto" else bool(want_batched))
    # member by member, at batch 1: the test set's first-layer product kept up to date between evaluations
    fronts = _first_layers(spec, nets[0], data, batched_eval, K)

    def evaluate_members(ks: list[int]) -> dict[int, dict[str, float]]:
        if batched_eval:
            return _evaluate_stacked(ens, data, ks)
        out = {}
        for k in ks:
            algo, net = ens.algorithm(k), ens.members[k]
            out[k] = evaluate(net, data, predict=lambda xb, algo=algo, net=net: algo.logits(net, xb), front=fronts[k] if fronts else None)
        return out

    first = evaluate_members(list(range(K)))
    rows: list[list[dict[str, float]]] = []
    for k in range(K):
        rows.append([{"update": 0, **first[k], "delta_norm": float("nan"), "delta_norm_first": float("nan")}])
        if track_path:
            rows[k][0]["path_length"] = 0.0
            rows[k][0]["delta_norm_max"] = float("nan")
    status = ["ok"] * K
    done = [0] * K
    path = [0.0] * K
    first_step = [float("nan")] * K  # ||dtheta|| of update 1: a step that kills or blows up a net is seen
    max_step = [0.0] * K
    active = list(range(K))
    label = f"train {spec.get('experiment', '')}/{spec.get('algo', name)}/lr{','.join(f'{lr:g}' for lr in lrs)}"
    report = Progress(label, updates) if progress else None
    native_before = sum(native.calls.values())
    t0 = time.perf_counter()
    train_time = 0.0
    steps = 0
    for u in range(1, updates + 1):
        is_eval = u % every == 0 or u == updates
        measure = is_eval or track_path or u == 1
        before = {k: [w.clone() for w in ens.members[k].weights] for k in active} if measure else None
        per_batch: dict[int, dict[str, float]] = {}
        if graph is not None:
            idx = torch.stack([batches[k].next() for k in range(K)])
            ts = time.perf_counter()
            stacked = graph.replay(idx)
            grads = {k: [g[k] for g in stacked] for k in active}
        else:
            xs, ys, labels = [], [], []
            for k in range(K):
                idx_k = batches[k].next().to(device)
                x = data.train_x[idx_k]
                xs.append(x)
                if fronts and k in active:
                    fronts[k].record(x, nets[0])
                labels.append(data.train_y[idx_k] if classifier else None)
                ys.append(targets(nets[0], x, data.train_y[idx_k], data.n_classes))
            bp: dict[int, list[torch.Tensor]] = {}
            for k in active if track_bp else []:  # before the update: the model the update is taken at
                algo_k, net_k = ens.algorithm(k), ens.members[k]
                per_batch[k] = batch_measures(algo_k, net_k, xs[k], ys[k], labels[k])
                bp[k] = algo_k.reference_gradient(net_k, xs[k], ys[k])
            ts = time.perf_counter()
            grads = ens.step(xs, ys, active, keep_gradient=track_bp)  # read only to compare with BP's
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time += time.perf_counter() - ts
        steps += 1
        for k in active:
            done[k] = u
        delta: dict[int, float] = {}
        if before is not None:
            for k in active:
                delta[k] = math.sqrt(sum(float(((w - b) ** 2).sum()) for w, b in zip(ens.members[k].weights, before[k])))
                path[k] += delta[k]
                if u == 1:
                    first_step[k] = delta[k]
                # a non-finite step is the largest (NaN would compare False and vanish from the max)
                max_step[k] = max(max_step[k], delta[k]) if math.isfinite(delta[k]) else math.inf
        for k in per_batch:
            agree = gradient_agreement(grads[k], bp[k], ens.members[k].weight_index)
            per_batch[k].update({BP_COLUMNS[key]: v for key, v in agree.items()})
            if not is_eval:
                rows[k].append({"update": u, **per_batch[k]})
        if is_eval:
            evals = evaluate_members(list(active))
            for k in list(active):
                row = {"update": u, **per_batch.get(k, {}), **evals[k], "delta_norm": delta[k], "delta_norm_first": first_step[k]}
                if track_path:
                    row["path_length"] = path[k]
                    row["delta_norm_max"] = max_step[k]
                rows[k].append(row)
                if not _finite(ens.members[k]) or not math.isfinite(row["test_loss"]) or not math.isfinite(delta[k]):
                    status[k] = "diverged"
                    active.remove(k)
            if report is not None:
                metric = "test_acc" if "test_acc" in rows[0][-1] else "test_loss"
                latest = [rows[k][-1][metric] for k in range(K) if rows[k][-1]["update"] == u]
                report(u, **{metric: sum(latest) / len(latest) if latest else float("nan"), "members": K, "diverged": status.count("diverged")})
            if not active:
                break
    wall = time.perf_counter() - t0

    frames = []
    for k, (lr, seed) in enumerate(members):
        df = pd.DataFrame(rows[k])
        df.insert(0, "seed", seed)
        df.insert(0, "lr", lr)
        df.insert(0, "algo", spec.get("algo", name))
        df.insert(0, "experiment", spec.get("experiment", ""))
        df["status"] = status[k]
        frames.append(df)
    model_updates = sum(done)
    meta = {
        "spec": spec,
        "status": "ok" if all(s == "ok" for s in status) else "diverged",
        "runs": [{"lr": lr, "seed": s, "status": st, "updates_done": d} for (lr, s), st, d in zip(members, status, done)],
        "members": K,
        "vectorised": ens.vectorised,
        # which code took the update steps: the native fast path (ilrepro.native) or the pure-torch
        # reference; float32 runs that are chaotic (a large step) end elsewhere on the other one
        "update_path": "native" if sum(native.calls.values()) > native_before else "reference",
        "cuda_graph": graph_status,
        "batched_eval": batched_eval,
        # evaluations from a first layer kept up to date (ilrepro.first_layer), and in full
        "first_layer_kept": sum(f.kept for f in fronts) if fronts else 0,
        "first_layer_full": sum(f.full for f in fronts) if fronts else 0,
        "updates_done": model_updates,
        "steps": steps,
        "wall_s": wall,
        "train_s": train_time,
        # model-updates (one model, one batch) per second of update steps, all members together
        "updates_per_s": model_updates / train_time if train_time > 0 else float("nan"),
        "data_files": list(data.files),  # every file read: path, sha256, how its identity was checked
        **environment_meta(device),
    }
    return pd.concat(frames, ignore_index=True), meta


def keeps_first_layer(spec: dict[str, Any], net: Net, n_test: int, batched_eval: bool = False) -> bool:
    """Whether the job's evaluations keep the first layer up to date (:mod:`ilrepro.first_layer`): the
    members are evaluated one by one, the prediction is the feedforward pass (not a free equilibrium),
    the model's first layer is linear, and ``keep_first_layer`` (default ``auto``: where it pays) says so."""
    cls = ALGORITHMS.get(spec["algorithm"])
    if batched_eval or cls is None or not first_layer.applies(net, cls):
        return False
    # an optimiser with state (Adam, momentum) moves W1 outside the batches' span: not tried (were it
    # tried, the residual check would find it and say so in a log line)
    if cls.optimiser == "adam" or float((spec.get("hparams") or {}).get("momentum", 0.0)) != 0.0:
        return False
    d_out, d_in = net.params[0].shape
    rows = int(spec["eval_every"]) * int(spec["batch_size"])
    return first_layer.kept_fraction(spec.get("keep_first_layer", "auto"), d_in, d_out, rows, n_test) is not None


def _first_layers(spec: dict[str, Any], net: Net, data: Dataset, batched_eval: bool, n_members: int) -> list[first_layer.FirstLayer]:
    if not keeps_first_layer(spec, net, len(data.test_y), batched_eval):
        return []
    label = f"{spec.get('experiment', '')}/{spec.get('algo', spec['algorithm'])}"
    return [first_layer.FirstLayer(data.test_x, label) for _ in range(n_members)]


@torch.no_grad()
def _evaluate_stacked(ens: Ensemble, data: Dataset, ks: list[int], chunk: int | None = None) -> dict[int, dict[str, float]]:
    """:func:`evaluate` for every member at once (a stacked job on CUDA): one vmapped forward pass per
    chunk, the measures reduced on the device and read back in one transfer."""
    net = ens.template
    n = len(data.test_y)
    chunk = eval_chunk(data.test_x.device) if chunk is None else chunk
    auto = net.meta.get("type") == "autoencoder"
    sums = torch.zeros(3, len(ens), dtype=torch.float64, device=data.test_x.device)
    for i in range(0, n, chunk):
        x, y = data.test_x[i : i + chunk], data.test_y[i : i + chunk]
        logits = ens.logits_all(x)  # (members, chunk, out)
        target = targets(net, x, y, data.n_classes)
        w = len(y) / n
        if auto:
            sums[1] += w * torch.stack([net.loss(logits[k], target) for k in range(len(ens))]).to(torch.float64)
            continue
        p = net.link(logits)
        sums[0] += w * (logits.argmax(-1) == y).to(torch.float64).mean(-1)
        sums[1] += w * ((p - target) ** 2).sum(-1).mean(-1).to(torch.float64)
        sums[2] += w * torch.stack([net.loss(logits[k], target) for k in range(len(ens))]).to(torch.float64)
    acc, loss, ce = sums.tolist()
    if auto:
        return {k: {"test_loss": loss[k]} for k in ks}
    return {k: {"test_acc": acc[k], "test_loss": loss[k], "test_ce": ce[k]} for k in ks}


def split_by_lr(df: pd.DataFrame, meta: dict[str, Any]) -> list[tuple[float, pd.DataFrame, dict[str, Any]]]:
    """A job's table and metadata as one run per learning rate, in the spec's order: that rate's rows,
    and metadata whose ``spec`` has that ``lr`` (and no ``lrs``), whose ``runs`` and ``status`` are that
    rate's seeds', and whose ``job`` says what the job trained together (rates, members, timing is the
    job's)."""
    spec = {k: v for k, v in meta["spec"].items() if k != "lrs"}
    lrs = lrs_of(meta["spec"])
    out = []
    for lr in lrs:
        runs = [r for r in meta["runs"] if r["lr"] == lr]
        one = {
            **meta,
            "spec": {**spec, "lr": lr},
            "status": "ok" if all(r["status"] == "ok" for r in runs) else "diverged",
            "runs": runs,
            "job": {"lrs": lrs, "members": meta["members"], "updates_done": meta["updates_done"]},
            "updates_done": sum(r["updates_done"] for r in runs),
        }
        out.append((lr, df[df["lr"] == lr].reset_index(drop=True), one))
    return out


def run_and_save(spec: dict[str, Any], metrics_paths: Sequence[str | Path] | str | Path, meta_paths: Sequence[str | Path] | str | Path) -> dict[str, Any]:
    """Train and write each learning rate's two files atomically (temp file + rename): a killed job
    leaves no partial file. ``metrics_paths`` / ``meta_paths``: one per learning rate, in the spec's
    order (one path each for a single ``lr``). Returns the job's metadata."""
    metrics_list = [metrics_paths] if isinstance(metrics_paths, (str, Path)) else list(metrics_paths)
    meta_list = [meta_paths] if isinstance(meta_paths, (str, Path)) else list(meta_paths)
    n = len(lrs_of(spec))
    if len(metrics_list) != n or len(meta_list) != n:
        raise ValueError(f"{n} learning rate(s) need {n} metrics and {n} meta paths, got {len(metrics_list)} and {len(meta_list)}")
    df, meta = train(spec)
    for (_, table, one), mp, jp in zip(split_by_lr(df, meta), metrics_list, meta_list, strict=True):
        atomic_write_parquet(table, Path(mp))
        atomic_write_json(one, Path(jp))
    return meta
