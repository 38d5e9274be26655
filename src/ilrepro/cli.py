"""Command line: ``ilrepro train | aggregate | analyse | claims | bench | performance`` (what the
Snakemake rules call), and ``ilrepro plan`` (the cluster resources a config asks for)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import layout

__all__ = ["main"]


def _train(args: argparse.Namespace) -> int:
    from .train import run_and_save

    spec = json.loads(Path(args.spec_file).read_text()) if args.spec_file else json.loads(args.spec)
    if args.threads:
        spec["threads"] = args.threads
    meta = run_and_save(spec, args.metrics, args.meta)
    how = "stacked" if meta["vectorised"] else "one by one"
    for r in meta["runs"]:
        print(f"run {spec.get('experiment')}/{spec.get('algo')}/lr{r['lr']:g}/seed{r['seed']}: {r['status']} ({r['updates_done']} updates)")
    graph = f", CUDA graph {meta['cuda_graph']}" if meta["device"].startswith("cuda") else ""
    print(f"{meta['members']} member(s) (learning rates x seeds) trained {how} on {meta['device']}{graph}: "
          f"{meta['updates_per_s']:.0f} model-updates/s")
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

    inputs = dict(_key_path(item) for item in args.inputs)
    table = evaluate_claims(json.loads(args.claims), inputs)
    atomic_write_csv(table, Path(args.out))
    print(table[["claim", "value", "threshold", "result"]].to_string(index=False))
    return 0


def _key_path(item: str) -> tuple[str, str]:
    key, sep, path = item.partition("=")
    if not sep or not key or not path:
        raise SystemExit(f"ilrepro claims: --inputs takes KEY=PATH items, got '{item}'")
    return key, path


def _check(args: argparse.Namespace) -> int:
    """Validate config files as the pipeline does, before any job (with the figures' notebooks)."""
    import warnings

    from .config import ConfigError, load_merged_config

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            config = load_merged_config(args.configfile, base=args.base, notebooks=Path(args.notebooks) if args.notebooks else None)
        except ConfigError as err:
            print(f"invalid config: {err}", file=sys.stderr)
            return 1
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    n_runs = sum(len(e["algorithms"]) for e in config["experiments"].values())
    print(f"config ok: {len(config['experiments'])} experiments ({n_runs} algorithm entries), "
          f"{len(config.get('analyses', {}))} analyses, {len(config['figures'])} figures, {len(config.get('claims', {}))} claims")
    return 0


def _plan(args: argparse.Namespace) -> int:
    if args.calibrate:
        from .costs import calibrate

        print(calibrate(args.calibrate, args.threads or 1))
        return 0
    from .config import load_merged_config
    from . import costs
    from .plan import figure_sources, plan_summary

    config = load_merged_config(args.configfile, base=None if args.no_base else args.base)
    if args.threads:
        config.setdefault("defaults", {})["threads"] = args.threads
    for fig in args.figure:
        try:
            print(figure_sources(config, fig))
        except KeyError as err:
            raise SystemExit(f"ilrepro plan: {err.args[0]}") from None
    jobs, summary = plan_summary(config, args.everything, args.figure or None, args.device)
    if args.jobs:
        jobs.to_csv(args.jobs, index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    total = summary.iloc[-1]
    print(f"requested: {total['cpu_hours']:.1f} CPU-hours, {total['gpu_hours']:.1f} GPU-hours (run-time limits: the estimate x "
          f"{costs.SAFETY:g}); expected use: {total['estimate_cpu_hours']:.1f} CPU-hours")
    return 0


def _compare_reference(args: argparse.Namespace) -> int:
    import pandas as pd

    from .claims import compare_to_reference

    table = compare_to_reference(pd.read_csv(args.yours), pd.read_csv(args.reference))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    differ = int((~table["agrees"]).sum())
    print(f"{len(table)} claims; {differ} with a different result" + (" (or in only one of the two tables)" if differ else ""))
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
    out = layout.bench_files(args.out_dir)
    atomic_write_csv(table, Path(out["table"]))
    atomic_write_csv(ratio, Path(out["ratios"]))
    atomic_write_json({**meta, "rows": table.to_dict(orient="records"), "ratios": ratio.to_dict(orient="records")}, Path(out["meta"]))
    print(f"bench: {int((table['status'] == 'ok').sum())} cells timed, {int((table['status'] != 'ok').sum())} skipped -> {args.out_dir}")
    return 0


def _sweep_bench(args: argparse.Namespace) -> int:
    from .bench import sweep_bench
    from .io import atomic_write_csv, atomic_write_json

    cfg = json.loads(args.config) if args.config else {}
    table, meta = sweep_bench(cfg)
    out = Path(args.out_dir)
    atomic_write_csv(table, out / "sweep_bench.csv")
    atomic_write_json({**meta, "rows": table.to_dict(orient="records")}, out / "sweep_bench.json")
    cols = ["algorithm", "members", "cuda_graph", "train_updates_per_s", "loop_updates_per_s", "step_ms", "setup_s", "minutes_per_sweep"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if "calibrated" in meta:
        print(f"paper plan, every training on a GPU: {meta['calibrated']['plan_gpu_hours']:.1f} GPU-hours, {meta['calibrated']['plan_jobs']} jobs")
    return 0


def _performance(args: argparse.Namespace) -> int:
    from .bench import training_performance
    from .io import atomic_write_csv

    table = training_performance(args.meta)
    atomic_write_csv(table, Path(args.out))
    print(f"performance: {len(table)} training jobs -> {args.out}")
    return 0


def _config_command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, help: str) -> argparse.ArgumentParser:
    """A command that reads the config files as the Snakefile reads them."""
    how = "Reads the --configfile files merged in order, or config/config.yaml if none, as the Snakefile does."
    p = sub.add_parser(name, help=help, description=how)
    p.add_argument("--configfile", nargs="*", default=[], help="config files, merged in order (default: the base)")
    p.add_argument("--base", default="config/config.yaml",
                   help="the Snakefile's own configfile, read when no --configfile is given (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ilrepro", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train one job (every learning rate x seed of an algorithm entry) from its JSON spec")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--spec", help="the job spec as a JSON string")
    g.add_argument("--spec-file", help="a file holding the job spec as JSON")
    t.add_argument("--metrics", nargs="+", required=True, help="output metrics tables (parquet), one per learning rate, in the spec's order")
    t.add_argument("--meta", nargs="+", required=True, help="output run metadata (JSON), one per learning rate, in the spec's order")
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
    c.add_argument("--inputs", nargs="*", default=[], metavar="KEY=PATH",
                   help="the tables the claims read, each as the key a check looks it up by (<experiment>/summary, "
                        "<experiment>/metrics, <analysis>) = its file (ilrepro.claims.claim_inputs)")
    c.add_argument("--out", required=True, help="output table (CSV)")
    c.set_defaults(func=_claims)

    cr = sub.add_parser("compare-reference", help="your claims table beside a kept reference run's (reference/<name>/claims.csv)")
    cr.add_argument("--reference", required=True, help="the reference's claims table, e.g. reference/fmnist/claims.csv")
    cr.add_argument("--yours", required=True, help="your run's claims table, e.g. results/claims/fmnist_paper.csv")
    cr.set_defaults(func=_compare_reference)

    ck = _config_command(sub, "check", "validate config files as the pipeline does (YAML, schema, every check), naming the key or line")
    ck.add_argument("--notebooks", default="notebooks" if Path("notebooks").is_dir() else "",
                    help="the figures' notebooks, to check each figure can be drawn (default: ./notebooks if there)")
    ck.set_defaults(func=_check)

    pl = _config_command(sub, "plan", "the run time, memory and CPU/GPU hours a config asks a cluster for (the rules' resources)")
    pl.add_argument("--no-base", action="store_true", help="do not read the base config first")
    pl.add_argument("--threads", type=int, default=0, help="torch threads per job (default: the config's)")
    pl.add_argument("--jobs", help="also write one row per job to this CSV file")
    pl.add_argument("--everything", action="store_true", help="also experiments and analyses that no figure uses")
    pl.add_argument("--figure", nargs="*", default=[], help="only what these figures need (and say what each is drawn from)")
    pl.add_argument("--device", choices=["cpu", "cuda"], help="plan every training job on this device instead of its config's")
    pl.add_argument("--calibrate", choices=["cpu", "cuda"], help="measure this machine's speed constants instead")
    pl.set_defaults(func=_plan)

    sw = sub.add_parser("sweep-bench", help="time one stacked job per algorithm of a learning-rate sweep (E1 CIFAR-10 by default) on random data")
    sw.add_argument("--config", default="", help="settings as a JSON object (see ilrepro.bench.SWEEP_DEFAULTS), e.g. '{\"device\": \"cpu\", \"updates\": 20}'")
    sw.add_argument("--out-dir", required=True, help="writes sweep_bench.csv and sweep_bench.json here")
    sw.set_defaults(func=_sweep_bench)

    b = sub.add_parser("bench", help="time every algorithm on the benchmark models (updates per second)")
    b.add_argument("--config", default="", help="bench settings as a JSON object (see ilrepro.bench.DEFAULTS)")
    b.add_argument("--out-dir", default=layout.BENCH_DIR, help="writes bench.csv, ratios.csv, bench.json here (default: %(default)s)")
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
