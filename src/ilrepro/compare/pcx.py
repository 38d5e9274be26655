"""``ilrepro bench --against pcx``: ilrepro and pcx (JAX, jit-compiled) on the same workload, in the
same run, interleaved, each pinned to the same core on one thread.

The workload is the papers' MLP (784-256-256-10, ReLU, softmax cross-entropy) on Fashion-MNIST in
float32, training only: for each setting (algorithm, batch size, T) and each of ``repeats`` rounds,
ilrepro trains ``updates`` updates (the fast path where it applies), then pcx the same number in its
worker process (:mod:`ilrepro.compare.pcx_worker`), then, with ``reference``, ilrepro's pure-torch
reference (``ILREPRO_NATIVE=0``). The ratio of a round is pcx's time over ilrepro's (> 1: ilrepro is
faster); the table reports the median over rounds (and the range). One evaluation on the 10,000 test
images is timed on its own for both, and the papers' protocol (an evaluation every 50 updates) is
reported as updates/s computed from the two: 50 / (50 t_update + t_eval).

Without pcx and jax installed the comparison is skipped with a line saying how to get them
(``pip install -e '.[compare]'``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

__all__ = ["GOALS", "SETTINGS", "available", "compare", "goals_table"]

# (algorithm, batch size, T): pcx has the IL-SGD and BP-SGD of the issue; IL-prox is timed for ilrepro
# alone (its goal is relative to IL-SGD's time)
SETTINGS: list[tuple[str, int, int | None]] = [
    ("bp_sgd", 1, None), ("bp_sgd", 64, None),
    ("il_sgd", 1, 25), ("il_sgd", 64, 25),
    ("il_sgd", 1, 5), ("il_sgd", 64, 5),
    ("il_prox", 1, 25), ("il_prox", 64, 25),
]
# the goals: ilrepro/pcx speed ratio at least this (per algorithm and batch size)
GOALS: dict[tuple[str, int], float] = {("il_sgd", 1): 2.0, ("il_sgd", 64): 1.5, ("bp_sgd", 1): 2.0, ("bp_sgd", 64): 1.5}
PROX_GOAL = 1.2  # IL-prox's time per update within this factor of IL-SGD's (same T, batch size)
HOW = "pip install -e '.[compare]'  (installs pcx and jax)"


def available() -> str:
    """'' when pcx and jax can be imported, else why not."""
    missing = [m for m in ("pcx", "jax", "optax") if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(missing)}" if missing else ""


class _Worker:
    def __init__(self, core: int | None) -> None:
        src = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1", "JAX_PLATFORMS": "cpu",
               "OMP_NUM_THREADS": "1", **({"ILREPRO_PCX_CORE": str(core)} if core is not None else {})}
        self.p = subprocess.Popen([sys.executable, "-m", "ilrepro.compare.pcx_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env=env, text=True)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"the pcx worker stopped (exit {self.p.wait()}); run `python -m ilrepro.compare.pcx_worker` to see why")
        return json.loads(line)

    def ask(self, msg: dict[str, Any]) -> float:
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()
        return float(self._read()["seconds"])

    def close(self) -> None:
        try:
            self.p.stdin.write(json.dumps({"quit": True}) + "\n")
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.p.kill()


class _Ours:
    """ilrepro's side of one setting: the algorithm on the model, batches from the data set."""

    def __init__(self, algo: str, bsz: int, T: int | None, data: Any, seed: int = 0) -> None:
        from ..algorithms import ALGORITHMS, make_algorithm
        from ..models import build_model

        self.net = build_model({"type": "mlp", "hidden": [256, 256]}, data.image_shape, data.n_classes, ALGORITHMS[algo].parameterisation, seed)
        lr = 1.0 if algo.startswith("il_prox") else 0.01
        self.algo = make_algorithm(algo, self.net, lr, {"T": T} if T is not None else None)
        self.data, self.bsz = data, bsz
        self.gen = torch.Generator().manual_seed(seed)

    def train(self, n: int) -> float:
        idx = torch.randint(0, len(self.data.train_y), (n, self.bsz), generator=self.gen)
        xs = [self.data.train_x[i] for i in idx]
        ys = [torch.nn.functional.one_hot(self.data.train_y[i], self.data.n_classes).float() for i in idx]
        t0 = time.perf_counter()
        for x, y in zip(xs, ys):
            self.algo.step(self.net, x, y, keep_gradient=False)  # as a training does
        return time.perf_counter() - t0

    def evaluate(self) -> float:
        from ..train import evaluate

        evaluate(self.net, self.data)
        t0 = time.perf_counter()
        evaluate(self.net, self.data)
        return time.perf_counter() - t0


def _native(on: bool) -> None:
    os.environ["ILREPRO_NATIVE"] = "1" if on else "0"


def compare(repeats: int = 5, updates_b1: int = 200, updates_b64: int = 40, reference: bool = True, core: int | None = None,
            settings: list[tuple[str, int, int | None]] | None = None, log=print) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The side-by-side table (one row per setting) and the run's metadata. ``core``: the CPU both sides
    are pinned to (default: the last one this process may use)."""
    from ..data import load_dataset
    from ..train import environment_meta

    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1] if core is None else int(core)
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    data = load_dataset("fashion_mnist", None)
    before = os.environ.get("ILREPRO_NATIVE")
    worker = _Worker(core) if not available() else None
    rows = []
    try:
        for algo, bsz, T in settings or SETTINGS:
            n = updates_b1 if bsz == 1 else updates_b64
            if algo == "bp_sgd":
                n *= 4  # a BP update is short: more of them for the same timing resolution
            _native(True)
            ours = _Ours(algo, bsz, T, data)
            ours.train(3)  # warm-up (and the extension's build, once)
            ref = None
            if reference:
                _native(False)
                ref = _Ours(algo, bsz, T, data)
                ref.train(3)
            setting = {"algorithm": algo, "batch_size": bsz, **({"T": T} if T is not None else {}), "lr": 0.01, "gamma": 0.02}
            has_pcx = worker is not None and algo in ("il_sgd", "bp_sgd")
            if has_pcx:
                worker.ask({"setting": setting, "updates": 3})  # compiles
            t_ours, t_pcx, t_ref, ratio = [], [], [], []
            for _ in range(repeats):
                _native(True)
                a = ours.train(n) / n
                t_ours.append(a)
                if has_pcx:
                    b = worker.ask({"setting": setting, "updates": n}) / n
                    t_pcx.append(b)
                    ratio.append(b / a)
                if ref is not None:
                    _native(False)
                    t_ref.append(ref.train(n) / n)
            _native(True)
            ev_ours = ours.evaluate()
            ev_pcx = worker.ask({"setting": setting, "eval": True}) if has_pcx else float("nan")
            med = statistics.median
            row = {
                "algorithm": algo, "batch_size": bsz, "T": T if T is not None else "", "updates": n, "repeats": repeats,
                "ilrepro_ms": 1e3 * med(t_ours), "pcx_ms": 1e3 * med(t_pcx) if t_pcx else float("nan"),
                "ratio": med(ratio) if ratio else float("nan"),
                "ratio_min": min(ratio) if ratio else float("nan"), "ratio_max": max(ratio) if ratio else float("nan"),
                "reference_ms": 1e3 * med(t_ref) if t_ref else float("nan"),
                "speedup_vs_reference": med(r / o for r, o in zip(t_ref, t_ours)) if t_ref else float("nan"),
                "eval_ilrepro_s": ev_ours, "eval_pcx_s": ev_pcx,
                "protocol_ilrepro_ups": 50 / (50 * med(t_ours) + ev_ours),
                "protocol_pcx_ups": 50 / (50 * med(t_pcx) + ev_pcx) if t_pcx else float("nan"),
            }
            rows.append(row)
            if log is not None:
                log(f"{algo:8s} B={bsz:<3d} T={row['T']!s:3s} ilrepro {row['ilrepro_ms']:.3f} ms  pcx {row['pcx_ms']:.3f} ms  "
                    f"ilrepro/pcx {row['ratio']:.2f}x  (reference {row['reference_ms']:.3f} ms)")
    finally:
        if worker is not None:
            worker.close()
        if before is None:
            os.environ.pop("ILREPRO_NATIVE", None)
        else:
            os.environ["ILREPRO_NATIVE"] = before
        os.sched_setaffinity(0, set(allowed))
    table = pd.DataFrame(rows)
    from .blas import blas_report

    os.sched_setaffinity(0, {core})
    try:
        blas = blas_report()
    finally:
        os.sched_setaffinity(0, set(allowed))
    # environment_meta's own "blas" (what ilrepro.mkl_vendor did) is part of the full report: the report wins
    meta = {**environment_meta("cpu"), "core": core, "threads": 1, "blas": blas, "pcx": worker.info if worker is not None else available(),
            "versions_compare": _versions()}
    return table, meta


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for m in ("pcx", "jax", "jaxlib", "optax", "equinox"):
        try:
            out[m] = version(m)
        except PackageNotFoundError:
            out[m] = "not installed"
    return out


def goals_table(table: pd.DataFrame) -> pd.DataFrame:
    """Each of the issue's goals: the measured value, the target, met or not."""
    rows = []
    for _, r in table.iterrows():
        goal = GOALS.get((r["algorithm"], int(r["batch_size"])))
        if goal is not None and r["ratio"] == r["ratio"]:
            rows.append({"goal": f"{r['algorithm']} T={r['T']} B={int(r['batch_size'])}: ilrepro/pcx >= {goal}", "value": r["ratio"],
                         "met": bool(r["ratio"] >= goal)})
    by = {(r["algorithm"], int(r["batch_size"]), str(r["T"])): r for _, r in table.iterrows()}
    for (algo, bsz, T), r in by.items():
        if algo == "il_prox" and ("il_sgd", bsz, T) in by:
            v = r["ilrepro_ms"] / by[("il_sgd", bsz, T)]["ilrepro_ms"]
            rows.append({"goal": f"il_prox/il_sgd time T={T} B={bsz} <= {PROX_GOAL}", "value": v, "met": bool(v <= PROX_GOAL)})
    return pd.DataFrame(rows, columns=["goal", "value", "met"])
