"""The cost model (ilrepro.costs) against measurement: every CPU training job of a config, one member
(its first learning rate, seed 0) for a short run on random data of the data set's shape, timed as the
pipeline trains it (ilrepro.train.train: the updates, the path tracking, the evaluations on the full
test set), next to the model's estimate for the same short run (without the start-up).

    taskset -c 1 python workflow/scripts/plan_check.py --configfile config/paper.yaml --out reference/plan_check.csv

``over`` = estimate / measured: above 1 the plan asks for more than the job takes. Run it on a quiet core.
``--calibrate``: estimate with this machine's constants (``ilrepro plan --calibrate cpu``, written to
``<out>.costs.json`` and read again by ``--reestimate``), which checks the model's form on a machine other
than the one :data:`ilrepro.costs.COSTS` was measured on; ``--costs FILE``: an earlier run's constants.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path

import ilrepro  # noqa: F401  (first: MKL's kernels on AMD, see ilrepro.mkl_vendor)
import pandas as pd
import torch

from ilrepro.bench import random_dataset
from ilrepro.config import load_merged_config
from ilrepro.costs import COSTS, Costs, calibrate, estimate_seconds, using
from ilrepro.data import SIZES
from ilrepro.experiments import job_spec, jobs
from ilrepro.runtime import environment_meta
from ilrepro.train import train


def short_run(spec: dict) -> dict:
    """One member, a few evaluations' worth of updates (at least one evaluation interval)."""
    ev, updates, bsz = int(spec["eval_every"]), int(spec["updates"]), int(spec["batch_size"])
    n = min(4 * ev, updates, 2000) if bsz == 1 else min(max(2 * ev, 100), updates, 400)
    return {**spec, "lrs": spec["lrs"][:1], "seeds": [0], "updates": max(n, min(ev, updates))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="+", default=["config/paper.yaml"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", default=[], help="substrings of experiment/algo to keep")
    ap.add_argument("--reestimate", action="store_true", help="keep --out's measurements, recompute its estimates (after a change of the model)")
    ap.add_argument("--calibrate", action="store_true", help="estimate with this machine's measured constants (kept in <out>.costs.json)")
    ap.add_argument("--costs", help="estimate with the constants of this file (an earlier --calibrate's <out>.costs.json)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_merged_config(args.configfile)
    costs_file = Path(f"{args.out}.costs.json")
    measured: Costs | None = None
    if args.costs:
        measured = Costs(**json.loads(Path(args.costs).read_text()))
        costs_file.write_text(json.dumps(dataclasses.asdict(measured), indent=1) + "\n")
    elif args.calibrate:
        measured = calibrate("cpu") if not args.reestimate or not costs_file.exists() else Costs(**json.loads(costs_file.read_text()))
        costs_file.write_text(json.dumps(dataclasses.asdict(measured), indent=1) + "\n")
        print(f"calibrated: {measured}")
    with using("cpu", measured) if measured is not None else contextlib.nullcontext():
        return run(args, cfg)


def run(args: argparse.Namespace, cfg: dict) -> int:
    if args.reestimate:
        table = pd.read_csv(args.out)
        for i, key in enumerate(table["job"]):
            exp, algo = key.split("/")
            table.loc[i, "estimate_s"] = estimate_seconds(short_run(job_spec(cfg, exp, algo))) - COSTS["cpu"].startup_s
        table["over"] = table["estimate_s"] / table["measured_s"]
        table.to_csv(args.out, index=False)
        print(f"over: median {table['over'].median():.2f}, range {table['over'].min():.2f}-{table['over'].max():.2f} -> {args.out}")
        return 0
    data: dict = {}
    rows = []
    for j in jobs(cfg):
        spec = job_spec(cfg, j.experiment, j.algo)
        key = f"{j.experiment}/{j.algo}"
        if spec.get("device") == "cuda" or (args.only and not any(o in key for o in args.only)):
            continue
        ds = SIZES[spec["dataset"]]
        dtype = torch.float64 if spec.get("dtype") == "float64" else torch.float32
        if (spec["dataset"], dtype) not in data:
            data[(spec["dataset"], dtype)] = random_dataset(spec["dataset"], 5000, ds.n_test, ds.image_shape, ds.n_classes, "cpu", dtype)
        d = data[(spec["dataset"], dtype)]
        short = short_run(spec)
        train({**short, "updates": 2, "eval_every": 2}, progress=False, data=d)  # warm-up: lazy set-up is not timed
        t0 = time.perf_counter()
        _, meta = train(short, progress=False, data=d)
        wall = time.perf_counter() - t0
        est = estimate_seconds(short) - COSTS["cpu"].startup_s
        rows.append({"job": key, "batch_size": short["batch_size"], "updates": short["updates"], "eval_every": short["eval_every"],
                     "update_path": meta.get("update_path"), "estimate_s": est, "measured_s": wall, "train_s": meta["train_s"],
                     "over": est / wall})
        print(f"{key:45s} B={short['batch_size']:<3d} n={short['updates']:<5d} {meta.get('update_path'):9s} "
              f"estimate {est:7.2f} s  measured {wall:7.2f} s  over {est / wall:5.2f}", flush=True)
    table = pd.DataFrame(rows)
    env = environment_meta("cpu")
    table["hardware"], table["mkl"] = env["hardware"], env["blas"]["mkl_vendor"]
    table.to_csv(args.out, index=False)
    print(f"over: median {table['over'].median():.2f}, range {table['over'].min():.2f}-{table['over'].max():.2f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
