"""``ilrepro plan``: the jobs a config runs and what they ask a cluster for, in total — the sum of the
per-job requests of :mod:`ilrepro.costs` (the same numbers the Snakemake rules' ``resources:`` use)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .costs import Resources, analysis_resources, train_resources
from .experiments import analysis_spec, job_spec, jobs

__all__ = ["figure_sources", "plan_table", "plan_summary"]


def figure_sources(config: dict[str, Any], fig: str) -> str:
    """One line: what a figure is drawn from (its notebook, experiments, analyses and other files)."""
    figs = config.get("figures", {})
    if fig not in figs:
        raise KeyError(f"no figure '{fig}' in the config; known: {', '.join(sorted(figs))}")
    f = figs[fig]
    parts = [f"notebook {f['notebook']}"] + [f"{k} {', '.join(f[k])}" for k in ("experiments", "analyses", "files") if f.get(k)]
    return f"figure {fig}: " + "; ".join(parts)


def plan_table(config: dict[str, Any], everything: bool = False, figures: list[str] | None = None, device: str | None = None) -> pd.DataFrame:
    """One row per job that ``snakemake`` (target: all figures, or the named ``figures``) runs for the
    config, first attempt: experiment/analysis, job (a training job: an algorithm entry, every learning
    rate x seed, ``members``), resources, and the CPU-hours and GPU-hours it asks for (requested minutes
    x CPUs, requested minutes x GPUs), and the CPU-hours it is expected to use (the estimate, before
    :data:`~ilrepro.costs.SAFETY`; an analysis, which has no cost model: its request). ``everything``: also experiments and analyses no figure uses.
    ``device``: plan every training job on this device instead of its config's (``cuda``: what the
    plan costs with every training on a GPU)."""
    for fig in figures or []:
        figure_sources(config, fig)  # an unknown figure is an error, naming the known ones
    figures = [f for name, f in config.get("figures", {}).items() if figures is None or name in figures]
    used_exps = {e for f in figures for e in f.get("experiments", [])}
    used_anas = {a for f in figures for a in f.get("analyses", [])}
    threads = int(config.get("defaults", {}).get("threads", 1))
    rows = []
    for j in jobs(config):
        if not everything and j.experiment not in used_exps:
            continue
        spec = job_spec(config, j.experiment, j.algo)
        spec["threads"] = threads
        if device is not None:
            spec["device"] = device
        res = train_resources(spec)
        rows.append({**_row("train", j.experiment, j.algo, spec, res), "members": len(j.lrs) * len(j.seeds)})
    for name in config.get("analyses", {}):
        if not everything and name not in used_anas:
            continue
        spec = analysis_spec(config, name)
        spec["threads"] = threads
        rows.append({**_row("analysis", name, name, spec, analysis_resources(spec)), "members": 0})
    return pd.DataFrame(rows)


def plan_summary(
    config: dict[str, Any], everything: bool = False, figures: list[str] | None = None, device: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-job table and a summary per (rule, experiment, device), with a TOTAL row."""
    jobs = plan_table(config, everything, figures, device)
    summary = (
        jobs.groupby(["rule", "experiment", "device"], sort=False)
        .agg(
            jobs=("job", "size"),
            members=("members", "sum"),
            estimate_min=("estimate_min", "max"),
            runtime_min=("runtime_min", "max"),
            mem_mb=("mem_mb", "max"),
            cpu_hours=("cpu_hours", "sum"),
            gpu_hours=("gpu_hours", "sum"),
            estimate_cpu_hours=("estimate_cpu_hours", "sum"),
        )
        .reset_index()
    )
    total = {"rule": "TOTAL", "experiment": "", "device": "", "jobs": len(jobs), "members": jobs["members"].sum(), "estimate_min": float("nan"),
             "runtime_min": summary["runtime_min"].max(), "mem_mb": summary["mem_mb"].max(),
             "cpu_hours": jobs["cpu_hours"].sum(), "gpu_hours": jobs["gpu_hours"].sum(),
             "estimate_cpu_hours": jobs["estimate_cpu_hours"].sum()}
    return jobs, pd.concat([summary, pd.DataFrame([total])], ignore_index=True)


def _row(rule: str, group: str, job: str, spec: dict[str, Any], res: Resources) -> dict[str, Any]:
    hours = res.runtime_min / 60
    return {
        "rule": rule,
        "experiment": group,
        "job": job,
        "device": spec.get("device", "cpu"),
        "estimate_min": res.estimate_s / 60,
        "runtime_min": res.runtime_min,
        "mem_mb": res.mem_mb,
        "cpus": res.cpus,
        "gpus": res.gpu,
        "cpu_hours": hours * res.cpus,
        "gpu_hours": hours * res.gpu,
        # what the job is expected to use (the model's estimate, before SAFETY; an analysis: its request)
        "estimate_cpu_hours": (res.estimate_s / 3600 if res.estimate_s == res.estimate_s else hours) * res.cpus,
    }
