"""Command line: ``ilrepro train | aggregate | analyse | bench | performance`` (what the Snakemake rules call)."""

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
    status = run_and_save(spec, args.metrics, args.meta)
    print(f"run {spec.get('experiment')}/{spec.get('algo')}/lr{spec.get('lr')}/seed{spec.get('seed')}: {status}")
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


def _bench(args: argparse.Namespace) -> int:
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

    b = sub.add_parser("bench", help="time every algorithm on the benchmark models (updates per second)")
    b.add_argument("--config", default="", help="bench settings as a JSON object (see ilrepro.bench.DEFAULTS)")
    b.add_argument("--out-dir", default="results/bench", help="writes bench.csv, ratios.csv, bench.json here")
    b.add_argument("--threads", type=int, default=0, help="torch threads (default: the config's, else 1)")
    b.set_defaults(func=_bench)

    f = sub.add_parser("performance", help="tabulate the training jobs' Snakemake benchmark files")
    f.add_argument("--meta", nargs="*", default=[], help="the runs' meta.json (their benchmark .tsv is found from it)")
    f.add_argument("--out", required=True, help="output table (CSV)")
    f.set_defaults(func=_performance)

    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
