"""Aggregate one experiment's runs into tidy tables: every evaluation row of every run, and a summary
per (algorithm entry, learning rate) with the learning rate selected as the paper does — best mean
*final* accuracy over seeds (lowest final test loss where there is no accuracy, e.g. the autoencoder).

The summary has what Alonso et al.'s tables report: final and max-over-curve accuracy (mean, std over
seeds), the update of convergence (first evaluation reaching 99 % of the run's best accuracy), mean,
variance, final and max ||dtheta||, the path length where tracked, divergences and speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["aggregate_runs", "summarise"]

KEYS = ["experiment", "algo", "lr"]


def aggregate_runs(metrics: Sequence[str | Path], metas: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate run tables, adding each run's algorithm, data set, model type and speed from its
    metadata."""
    frames = []
    for m, j in zip(metrics, metas, strict=True):
        df = pd.read_parquet(m)
        meta = json.loads(Path(j).read_text())
        df["algorithm"] = meta["spec"]["algorithm"]
        df["dataset"] = meta["spec"]["dataset"]
        df["model"] = meta["spec"]["model"].get("type", "mlp")
        df["updates_per_s"] = meta["updates_per_s"]
        df["device"] = meta["device"]
        frames.append(df)
    if not frames:
        raise ValueError("no runs to aggregate")
    return pd.concat(frames, ignore_index=True)


def _final(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its last evaluation (a diverged run's last row is where it stopped)."""
    return df.sort_values("update").groupby(KEYS + ["seed"], as_index=False).tail(1)


def _converged_update(run: pd.DataFrame, frac: float = 0.99) -> float:
    """The first evaluated update at which a run reaches ``frac`` of its best test accuracy."""
    acc = run.sort_values("update")
    hit = acc[acc["test_acc"] >= frac * acc["test_acc"].max()]
    return float(hit["update"].iloc[0]) if len(hit) else float("nan")


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    has_acc = "test_acc" in table.columns and table["test_acc"].notna().any()
    final = _final(table)
    g = final.groupby(KEYS, sort=True)
    out = g.agg(
        algorithm=("algorithm", "first"),
        n_seeds=("seed", "nunique"),
        n_diverged=("status", lambda s: int((s == "diverged").sum())),
        final_loss_mean=("test_loss", "mean"),
        final_loss_std=("test_loss", "std"),
        updates_per_s=("updates_per_s", "mean"),
    )
    per_run = table.groupby(KEYS + ["seed"])
    if has_acc:
        out["final_acc_mean"] = g["test_acc"].mean()
        out["final_acc_std"] = g["test_acc"].std()
        peak = per_run["test_acc"].max().groupby(KEYS)
        out["max_acc_mean"] = peak.mean()
        out["max_acc_std"] = peak.std()
        out["converged_update_mean"] = per_run.apply(_converged_update, include_groups=False).groupby(KEYS).mean()
    moves = table.dropna(subset=["delta_norm"]).groupby(KEYS)["delta_norm"]
    out["delta_norm_mean"] = moves.mean()
    out["delta_norm_var"] = moves.var()
    out["final_delta_norm_mean"] = g["delta_norm"].mean()
    out["max_delta_norm_mean"] = table.groupby(KEYS + ["seed"])["delta_norm"].max().groupby(KEYS).mean()
    if "delta_norm_first" in table.columns:  # the first update's step (the one that kills or blows up a net)
        out["first_delta_norm_mean"] = g["delta_norm_first"].mean()
    if "delta_norm_max" in table.columns:  # the largest step over every update, not only evaluated ones
        out["max_step_mean"] = g["delta_norm_max"].mean()
    if "path_length" in table.columns:
        out["path_length_mean"] = g["path_length"].mean()
    out = out.reset_index()
    score = out["final_acc_mean"] if has_acc else -out["final_loss_mean"]
    score = score.where(np.isfinite(score), -np.inf)
    out["selected"] = out.index.isin(score.groupby(out["algo"]).idxmax())
    return out
