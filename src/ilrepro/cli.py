"""Command line: ``ilrepro train | aggregate | analyse | claims | bench | performance`` (what the
Snakemake rules call), and ``ilrepro plan`` (the cluster resources a config asks for)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _train(args: argparse.Namespace) -> int:
    from .train import run_and_save

    spec = json.loads(Path(args.spec_file).read_text()) if args.spec_file else json.loads(args.spec)
    if args.threads:
        spec["threads"] = args.threads
    meta = run_and_save(spec, args.metrics, args.meta)
    how = "vectorised" if meta["vectorised"] else "one by one"
    for r in meta["runs"]:
        print(f"run {spec.get('experiment')}/{spec.get('algo')}/lr{spec.get('lr')}/seed{r['seed']}: {r['status']} ({r['updates_done']} updates)")
    print(f"{meta['members']} seed(s) trained {how}: {meta['updates_per_s']:.0f} model-updates/s")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from .aggregate import aggregate_runs, summarise
    from .io import atomic_write_csv, atomic_write_parquet

    table = aggregate_runs(args.metrics, args.meta)
    atomic_write_parquet(table, Path(args.table))
    atomic_write_csv(summarise(table), Path(args.summary))
    print(f"aggregated {table[['algo', 'lr', 'seed']].drop_duplicates().shape[0]} runs into {args.table}")
    return 0


def _analyse(args: argparse.Namespace) -> int:
    from .analyses import run_analysis_spec
    from .io import atomic_write_json, atomic_write_parquet

    spec = json.loads(args.spec)
    if args.threads:
        spec["threads"] = args.threads
    table, meta = run_analysis_spec(spec)
    atomic_write_parquet(table, Path(args.table))
    atomic_write_json(meta, Path(args.meta))
    print(f"analysis {spec['analysis']} ({spec['kind']}): {len(table)} rows")
    return 0


def _claims(args: argparse.Namespace) -> int:
    from .claims import evaluate_claims
    from .io import atomic_write_csv

    table = evaluate_claims(json.loads(args.claims), args.inputs)
    atomic_write_csv(table, Path(args.out))
    print(table[["claim", "value", "threshold", "result"]].to_string(index=False))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .plan import calibrate, plan_summary

    if args.calibrate:
        print(calibrate(args.calibrate, args.threads or 1))
        return 0
    from .experiments import load_merged_config

    config = load_merged_config(args.configfile, base=None if args.no_base else args.base)
    if args.threads:
        config.setdefault("defaults", {})["threads"] = args.threads
    jobs, summary = plan_summary(config, args.everything)
    if args.jobs:
        jobs.to_csv(args.jobs, index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    return 0


def _against(args: argparse.Namespace) -> int:
    """``bench --against pcx``: the side-by-side table (ilrepro.compare.pcx)."""
    from .compare import pcx
    from .io import atomic_write_csv, atomic_write_json

    why = pcx.available()
    if why:
        print(f"bench --against pcx: skipped, pcx/jax {why}; to compare: {pcx.HOW}")
        return 0
    table, meta = pcx.compare(repeats=args.repeats, core=args.core)
    goals = pcx.goals_table(table)
    out = Path(args.out_dir)
    atomic_write_csv(table, out / "pcx.csv")
    atomic_write_csv(goals, out / "pcx_goals.csv")
    atomic_write_json({**meta, "command": " ".join(sys.argv), "rows": table.to_dict(orient="records"),
                       "goals": goals.to_dict(orient="records")}, out / "pcx.json")
    print(goals.to_string(index=False))
    print(f"bench --against pcx: {len(table)} settings -> {out}/pcx.csv")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.against:
        return _against(args)
    from .bench import bench
    from .io import atomic_write_csv, atomic_write_json

    cfg = json.loads(args.config) if args.config else {}
    if args.threads:
        cfg["threads"] = args.threads
    table, ratio, meta = bench(cfg)
    out = Path(args.out_dir)
    atomic_write_csv(table, out / "bench.csv")
    atomic_write_csv(ratio, out / "ratios.csv")
    atomic_write_json({**meta, "rows": table.to_dict(orient="records"), "ratios": ratio.to_dict(orient="records")}, out / "bench.json")
    print(f"bench: {int((table['status'] == 'ok').sum())} cells timed, {int((table['status'] != 'ok').sum())} skipped -> {out}")
    return 0


def _performance(args: argparse.Namespace) -> int:
    from .bench import training_performance
    from .io import atomic_write_csv

    table = training_performance(args.meta)
    atomic_write_csv(table, Path(args.out))
    print(f"performance: {len(table)} training jobs -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ilrepro", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train one run from its JSON spec")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--spec", help="the run spec as a JSON string")
    g.add_argument("--spec-file", help="a file holding the run spec as JSON")
    t.add_argument("--metrics", required=True, help="output metrics table (parquet)")
    t.add_argument("--meta", required=True, help="output run metadata (JSON)")
    t.add_argument("--threads", type=int, default=0, help="torch threads (default: the spec's, else 1)")
    t.set_defaults(func=_train)

    a = sub.add_parser("aggregate", help="aggregate one experiment's runs")
    a.add_argument("--metrics", nargs="+", required=True)
    a.add_argument("--meta", nargs="+", required=True)
    a.add_argument("--table", required=True, help="output: all evaluation rows (parquet)")
    a.add_argument("--summary", required=True, help="output: per algorithm and learning rate (CSV)")
    a.set_defaults(func=_aggregate)

    n = sub.add_parser("analyse", help="run one analysis (a theory or diagnostic experiment)")
    n.add_argument("--spec", required=True, help="the analysis spec as a JSON string")
    n.add_argument("--table", required=True, help="output table (parquet)")
    n.add_argument("--meta", required=True, help="output metadata (JSON)")
    n.add_argument("--threads", type=int, default=0)
    n.set_defaults(func=_analyse)

    c = sub.add_parser("claims", help="check the papers' claims against aggregated results")
    c.add_argument("--claims", required=True, help="the config's claims block as JSON")
    c.add_argument("--inputs", nargs="*", default=[], help="the aggregated tables the claims read")
    c.add_argument("--out", required=True, help="output table (CSV)")
    c.set_defaults(func=_claims)

    pl = sub.add_parser(
        "plan",
        help="the run time, memory and CPU/GPU hours a config asks a cluster for (the rules' resources)",
        description="Reads the --configfile files merged in order, or config/config.yaml if none, as the Snakefile does.",
    )
    pl.add_argument("--configfile", nargs="*", default=[], help="config files, merged in order (default: the base)")
    pl.add_argument("--base", default="config/config.yaml", help="the Snakefile's own configfile, read when no --configfile is given (default: %(default)s)")
    pl.add_argument("--no-base", action="store_true", help="do not read the base config first")
    pl.add_argument("--threads", type=int, default=0, help="torch threads per job (default: the config's)")
    pl.add_argument("--jobs", help="also write one row per job to this CSV file")
    pl.add_argument("--everything", action="store_true", help="also experiments and analyses that no figure uses")
    pl.add_argument("--calibrate", choices=["cpu", "cuda"], help="measure this machine's speed constants instead")
    pl.set_defaults(func=_plan)

    b = sub.add_parser("bench", help="time every algorithm on the benchmark models (updates per second)")
    b.add_argument("--config", default="", help="bench settings as a JSON object (see ilrepro.bench.DEFAULTS)")
    b.add_argument("--out-dir", default="results/bench", help="writes bench.csv, ratios.csv, bench.json here")
    b.add_argument("--threads", type=int, default=0, help="torch threads (default: the config's, else 1)")
    b.add_argument("--against", choices=["pcx"], default=None,
                   help="instead: ilrepro and pcx side by side on the papers' MLP, interleaved, one core (writes pcx.csv, pcx_goals.csv)")
    b.add_argument("--repeats", type=int, default=5, help="--against: rounds per setting (the ratio is their median)")
    b.add_argument("--core", type=int, default=None, help="--against: the CPU both sides are pinned to (default: the last allowed)")
    b.set_defaults(func=_bench)

    f = sub.add_parser("performance", help="tabulate the training jobs' Snakemake benchmark files")
    f.add_argument("--meta", nargs="*", default=[], help="the runs' meta.json (their benchmark .tsv is found from it)")
    f.add_argument("--out", required=True, help="output table (CSV)")
    f.set_defaults(func=_performance)

    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
