"""Training-speed benchmark: updates per second of every registered algorithm on every benchmark model.

The protocol is the issue's (and the one the authors' code and pcx were timed under): one torch thread,
a fixed number of updates at a given batch size, evaluation on the full test set every ``eval_every``
updates. Each (model, algorithm, batch size) cell is one real :func:`ilrepro.train.train` run, so what
is timed is exactly what the pipeline trains; ``updates_per_s`` counts the wall time of the training
loop *including* its evaluations (the protocol's number), ``train_updates_per_s`` the update steps
alone. Cells whose algorithm is not registered, or whose algorithm cannot train that model (it raises),
are recorded with ``status = skipped`` and the reason, never a crash.

With ``seeds: [1, 5]`` every cell also runs as 5 seeds trained together (:mod:`ilrepro.ensemble`:
stacked weights, one vmapped step), and the ratios table gains the seed-vectorisation speed-up: model-
updates per second with 5 seeds over those with 1 (evaluation, which is per model, included).

Also reported: the cost ratios IL/BP and Z-IL/BP (time per update relative to BP-SGD on the same model
and batch size; Z-IL appears once an algorithm named ``zil`` is registered), peak resident memory of the
process, and the hardware (:func:`ilrepro.train.environment_meta`).
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import layout
from .algorithms import ALGORITHMS
from .data import SIZES, Dataset
from .runtime import environment_meta, resolve_device
from .train import train

__all__ = ["DEFAULTS", "MODELS", "SWEEP_DEFAULTS", "bench", "ratios", "peak_rss_mb", "training_performance", "sweep_bench", "random_dataset"]

# The benchmark's models: the papers' MLP (784-256-256-10 on Fashion-MNIST) and a small CNN. A model
# type the build does not know (e.g. an RNN before it is merged) is recorded as skipped.
MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"type": "mlp", "hidden": [256, 256]},
    "cnn": {"type": "cnn", "channels": [16, 32], "kernels": [3, 3], "strides": [1, 2]},
    "rnn": {"type": "rnn", "hidden": [128]},
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
    "seeds": [1],  # cell sizes: n seeds (seed, seed+1, ...) trained together; 1 = one model
    "warmup_updates": 2,  # an untimed run of each cell first (lazy kernel set-up is not timed); 0: none
    "threads": 1,
    "device": "cpu",
    "dtype": "float32",
    "data": {},
    "model_overrides": {},  # model name -> keys overriding MODELS[name] (e.g. {mlp: {hidden: [16]}})
}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def _dataset(cfg: dict[str, Any]) -> str:
    from .data import DatasetError, load_configured

    try:
        load_configured(cfg["dataset"], cfg.get("data", {}))
        return str(cfg["dataset"])
    except DatasetError:
        if not cfg.get("fallback_dataset"):
            raise
        return str(cfg["fallback_dataset"])


def _cell(cfg: dict[str, Any], dataset: str, model: str, algo: str, bsz: int, n_seeds: int = 1) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "algorithm": algo, "batch_size": bsz, "seeds": n_seeds, "dataset": dataset}
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
        **({"seeds": list(range(int(cfg["seed"]), int(cfg["seed"]) + n_seeds))} if n_seeds > 1 else {"seed": int(cfg["seed"])}),
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
        if int(cfg["warmup_updates"]) > 0:
            train({**spec, "updates": int(cfg["warmup_updates"]), "eval_every": int(cfg["warmup_updates"])}, progress=False)
        df, meta = train(spec, progress=False)
    except Exception as err:  # noqa: BLE001 — a combination that cannot run is a recorded result
        return {**row, "status": "skipped", "reason": f"{type(err).__name__}: {err}"}
    done = int(meta["updates_done"])  # model-updates: summed over the seeds
    wall = float(meta["wall_s"])
    out = {
        **row,
        "status": "ok" if meta["status"] == "ok" else str(meta["status"]),
        "reason": "",
        "vectorised": bool(meta["vectorised"]),
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
    and batch size, one seed (from the update steps alone, so evaluation does not dilute the ratio); and,
    for cells run with n > 1 seeds, the seed-vectorisation speed-up ``"{n} seeds/1 ({algorithm})"``:
    model-updates per second (evaluation included) with n seeds over that with one."""
    ok = table[table["status"] == "ok"]
    if "seeds" not in ok:
        ok = ok.assign(seeds=1)
    rows = []
    for (model, bsz), g in ok.groupby(["model", "batch_size"]):
        one = g[g["seeds"] == 1]
        t = dict(zip(one["algorithm"], one["train_ms_per_update"]))
        for a in against:
            if a in t and base in t:
                rows.append({"model": model, "batch_size": bsz, "ratio": f"{a}/{base}", "value": t[a] / t[base]})
        speed1 = dict(zip(one["algorithm"], one["updates_per_s"])) if "updates_per_s" in g else {}
        for _, r in g[g["seeds"] > 1].iterrows():
            if r["algorithm"] in speed1:
                name = f"{int(r['seeds'])} seeds/1 ({r['algorithm']})"
                rows.append({"model": model, "batch_size": bsz, "ratio": name, "value": r["updates_per_s"] / speed1[r["algorithm"]]})
    return pd.DataFrame(rows, columns=["model", "batch_size", "ratio", "value"])


def bench(cfg: dict[str, Any] | None = None, log=print) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Run every (model, algorithm, batch size) cell; returns (table, ratios, metadata)."""
    c = {**DEFAULTS, **(cfg or {})}
    unknown = set(c) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"bench: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(DEFAULTS))}")
    torch.set_num_threads(int(c["threads"]))
    dataset = _dataset(c)
    rows = []
    t0 = time.perf_counter()
    for model in c["models"]:
        for bsz in c["batch_sizes"]:
            for algo in c["algorithms"]:
                for n in c["seeds"]:
                    row = _cell(c, dataset, model, algo, int(bsz), int(n))
                    rows.append(row)
                    if log is not None:
                        speed = f"{row['updates_per_s']:.0f} model-updates/s" if row["status"] == "ok" else row["reason"]
                        log(f"{model:4s} B={bsz:<3d} {algo:14s} seeds={int(n):<2d} {row['status']:8s} {speed}")
    table = pd.DataFrame(rows)
    meta = {"config": c, "dataset": dataset, "bench_s": time.perf_counter() - t0, **environment_meta(c["device"])}
    return table, ratios(table), meta


def training_performance(meta_paths: list[str | Path]) -> pd.DataFrame:
    """One row per training job: its spec (experiment, algorithm, lr, seeds, model, batch size), the
    library's own timing (model-updates done over all seeds, training-loop wall time, model-updates/s of
    the update steps, whether the seeds were vectorised) and, where
    the job ran under Snakemake, its ``benchmark:`` record (wall seconds of the whole job including
    start-up, CPU seconds, peak RSS in MB)."""
    rows = []
    for mp in map(Path, meta_paths):
        meta = json.loads(mp.read_text())
        spec = meta.get("spec", {})
        row: dict[str, Any] = {
            "experiment": spec.get("experiment", ""),
            "algo": spec.get("algo", spec.get("algorithm", "")),
            "algorithm": spec.get("algorithm", ""),
            "lr": spec.get("lr"),
            "seeds": len(spec["seeds"]) if "seeds" in spec else 1,
            "vectorised": bool(meta.get("vectorised", False)),
            "model": spec.get("model", {}).get("type", ""),
            "dataset": spec.get("dataset", ""),
            "batch_size": spec.get("batch_size"),
            "status": meta.get("status"),
            "updates": meta.get("updates_done"),
            "loop_s": meta.get("wall_s"),
            "train_updates_per_s": meta.get("updates_per_s"),
            "hardware": meta.get("hardware"),
            "job_s": float("nan"),
            "cpu_s": float("nan"),
            "max_rss_mb": float("nan"),
        }
        tsv = layout.benchmark_of_run(mp)
        if tsv.exists():
            b = pd.read_csv(tsv, sep="\t")
            if len(b):
                row["job_s"] = float(b["s"].iloc[-1])
                row["cpu_s"] = float(pd.to_numeric(b.get("cpu_time", pd.Series([float("nan")])), errors="coerce").iloc[-1])
                row["max_rss_mb"] = float(pd.to_numeric(b.get("max_rss", pd.Series([float("nan")])), errors="coerce").iloc[-1])
        rows.append(row)
    cols = ["experiment", "algo", "algorithm", "lr", "seeds", "vectorised", "model", "dataset", "batch_size", "status", "updates",
            "loop_s", "train_updates_per_s", "hardware", "job_s", "cpu_s", "max_rss_mb"]
    return pd.DataFrame(rows, columns=cols)


# The stacked-sweep benchmark (issue 17): one algorithm entry of Paper A's E1 on CIFAR-10 (3072-1024-1024-
# 1024-10, B=1, 6 learning rates x 5 seeds = 30 members, evaluation every 50 updates on 10,000 test
# images), on random data of CIFAR-10's shape, timed over ``updates`` and extrapolated to the paper's run.
SWEEP_DEFAULTS: dict[str, Any] = {
    "configfile": "config/paper.yaml",
    "experiment": "alonso_e1_cifar_b1",
    "algorithms": ["il_sgd", "il_prox", "bp_sgd", "bp_prox"],
    "updates": 2000,  # timed; the minutes per sweep are extrapolated to the experiment's own run length
    "eager_too": ["il_sgd"],  # also timed without the CUDA graph (cuda_graph: false), for the gain
    "device": "cuda",
    "threads": 1,
}


def random_dataset(name: str, n_train: int, n_test: int, shape: tuple[int, int, int], n_classes: int, device: str | torch.device,
                   dtype: torch.dtype = torch.float32, seed: int = 0) -> Dataset:
    """Uniform random images and labels of a data set's shape (for timing, never for results)."""
    g = torch.Generator().manual_seed(seed)
    return Dataset(
        name,
        torch.rand(n_train, *shape, generator=g),
        torch.randint(0, n_classes, (n_train,), generator=g),
        torch.rand(n_test, *shape, generator=g),
        torch.randint(0, n_classes, (n_test,), generator=g),
        n_classes,
        ({"path": "(random)", "sha256": "", "identity": "random data for timing"},),
    ).to(device, dtype)


def sweep_bench(cfg: dict[str, Any] | None = None, log: Any = print) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Time one stacked job per algorithm of ``cfg['experiment']`` (every learning rate x seed of its entry
    as one model) on random data of the data set's shape; returns one row per job (members, model-
    updates/s of the update steps and of the whole loop, minutes per sweep at the experiment's run
    length, whether the CUDA graph was captured) and the metadata, which holds the plan calibrated from
    these measurements (GPU-hours of every training on a GPU, ``ilrepro plan --device cuda``)."""
    from . import costs
    from .config import load_merged_config
    from .experiments import job_spec
    from .plan import plan_summary

    c = {**SWEEP_DEFAULTS, **(cfg or {})}
    config = load_merged_config([c["configfile"]], base=None)
    exp = config["experiments"][c["experiment"]]
    size = SIZES[exp["dataset"]]
    device = resolve_device(c["device"])
    data = random_dataset(exp["dataset"], size.n_train, size.n_test, size.image_shape, size.n_classes, device)
    rows = []
    for algo in c["algorithms"]:
        for graph in ([True, False] if algo in c["eager_too"] else [True]):
            spec = {**job_spec(config, c["experiment"], algo), "updates": int(c["updates"]), "device": c["device"],
                    "threads": int(c["threads"]), **({} if graph else {"cuda_graph": False})}
            t0 = time.perf_counter()
            df, meta = train(spec, progress=False, data=data)
            job_s = time.perf_counter() - t0
            per_update = meta["wall_s"] / meta["steps"]  # the loop, evaluations included, per update
            row = {
                "experiment": c["experiment"], "algorithm": algo, "members": meta["members"], "vectorised": meta["vectorised"],
                "cuda_graph": meta["cuda_graph"], "batched_eval": meta["batched_eval"], "updates": meta["steps"],
                "train_updates_per_s": meta["updates_per_s"],  # model-updates/s of the update steps, all members
                "loop_updates_per_s": meta["updates_done"] / meta["wall_s"],
                "step_ms": 1e3 * meta["train_s"] / meta["steps"],  # one stacked update of every member
                "setup_s": job_s - meta["wall_s"],  # data to the device, model build, capture, first evaluation
                "minutes_per_sweep": (job_s - meta["wall_s"] + per_update * int(exp["updates"])) / 60,
                "diverged": sum(r["status"] == "diverged" for r in meta["runs"]),
                "hardware": meta["hardware"],
            }
            rows.append(row)
            log(f"sweep {algo:10s} graph={str(graph):5s} {row['members']} members: {row['train_updates_per_s']:.0f} model-updates/s "
                f"(step {row['step_ms']:.2f} ms), {row['minutes_per_sweep']:.1f} min per {exp['updates']}-update sweep [{row['cuda_graph']}]")
    table = pd.DataFrame(rows)
    meta: dict[str, Any] = {"config": c, **environment_meta(device)}
    if device.type == "cuda":
        measured = costs.calibrate("cuda", int(c["threads"]))
        m = costs.model_cost(exp["model"], exp["dataset"])
        fitted = []
        # every row, the eager one too: the plan's jobs with Adam run the eager stacked step (the larger)
        for r in rows:
            spec = job_spec(config, c["experiment"], r["algorithm"])
            passes = costs.passes_per_update(r["algorithm"], spec.get("hparams"), m.n_layers)
            flops = r["members"] * m.flops * int(exp["batch_size"]) / measured.flops_per_s
            fitted.append((r["step_ms"] / 1e3 / passes - flops) / (m.n_layers * measured.pass_overhead_s))
        stack_overhead = max(0.1, max(fitted)) if fitted else measured.stack_overhead
        measured = dataclasses.replace(measured, stack_overhead=stack_overhead)
        with costs.using("cuda", measured):
            _, summary = plan_summary(config, device="cuda")
        total = summary[summary["rule"] == "TOTAL"].iloc[0]
        meta["calibrated"] = {"costs": dataclasses.asdict(measured), "stack_overhead": stack_overhead,
                              "plan_gpu_hours": float(total["gpu_hours"]), "plan_jobs": int(total["jobs"]),
                              "plan": summary.to_dict(orient="records")}
        log(f"plan, every training on a GPU, calibrated here: {total['gpu_hours']:.1f} GPU-hours ({int(total['jobs'])} jobs); "
            f"constants {measured}, stack overhead {stack_overhead}")
    return table, meta
