"""The paired-difference check (``paired_diff_ci``): the t-interval over seeds of the per-seed mean
difference, its lower bound as the value; a NaN row makes the value NaN and is counted, never dropped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ilrepro.claims import CHECKS, evaluate_claims

PARAMS = {"analysis": "al", "a": "cos_implicit", "b": "cos_bp", "reference": "cos_bp_implicit", "where": {"algorithm": "il_sgd", "layer": "all"}}
CLAIM = {"paper": "A", "statement": "s", "quantity": "q", "check": "paired_diff_ci", "params": PARAMS, "threshold": 0.0, "direction": "above"}


def _table(shift: float, seeds: int = 4, points: int = 20, noise: float = 0.05) -> pd.DataFrame:
    """cos_bp ~ 0.8 + noise and cos_implicit = cos_bp + shift + noise; per-layer and il_prox rows that the
    filter must drop (their difference is the other way round, and large)."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(seeds):
        for u in range(points):
            bp = 0.8 + noise * rng.standard_normal()
            rows.append({"algorithm": "il_sgd", "layer": "all", "seed": s, "update": 10 * u, "cos_bp": bp,
                         "cos_implicit": bp + shift + noise * rng.standard_normal(), "cos_bp_implicit": 0.95})
            for algo, layer in (("il_sgd", "layer 0"), ("il_prox", "all")):
                rows.append({"algorithm": algo, "layer": layer, "seed": s, "update": 10 * u, "cos_bp": 0.9, "cos_implicit": 0.1,
                             "cos_bp_implicit": 0.5})
    return pd.DataFrame(rows)


def _evaluate(df: pd.DataFrame, tmp_path) -> pd.Series:
    df.to_parquet(tmp_path / "al.parquet")
    return evaluate_claims({"c": CLAIM}, {"al": tmp_path / "al.parquet"}).iloc[0]


def test_the_value_is_the_t_intervals_lower_bound():
    """Per-seed mean differences 1, 2, 3: mean 2, sd 1; with 2 degrees of freedom the t quantile has the
    closed form (2p - 1) / sqrt(2 p (1 - p)), 4.3027 at p = 0.975."""
    df = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "a": [0.5, 1.5, 2.0, 2.0, 3.0, 3.0], "b": [0.0] * 6})
    value, detail = CHECKS["paired_diff_ci"]({"t": df}, {"analysis": "t", "a": "a", "b": "b"})
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) / math.sqrt(3)
    assert value == pytest.approx(2 - half, rel=1e-12)
    assert f"[{2 - half:.4g}, {2 + half:.4g}] over 3 seeds" in detail and "a > b at 100% of 6 points" in detail


def test_a_clear_lead_passes(tmp_path):
    row = _evaluate(_table(0.05), tmp_path)
    assert row["result"] == "pass" and 0 < row["value"] < 0.05
    assert "over 4 seeds" in row["detail"] and "mean cos_bp_implicit 0.95" in row["detail"]


def test_no_lead_fails(tmp_path):
    """Per-seed mean differences +0.01, -0.01, +0.005, -0.005 (mean 0): the interval straddles 0."""
    df = _table(0.0, noise=0.0)
    keep = df["algorithm"].eq("il_sgd") & df["layer"].eq("all")
    df.loc[keep, "cos_implicit"] = df.loc[keep, "cos_bp"] + df.loc[keep, "seed"].map({0: 0.01, 1: -0.01, 2: 0.005, 3: -0.005})
    row = _evaluate(df, tmp_path)
    assert row["result"] == "FAIL" and row["value"] < 0 and "at 50% of 80 points" in row["detail"]


def test_a_nan_row_is_counted_as_diverged_and_makes_the_value_nan(tmp_path):
    df = _table(0.05)
    i = df.index[(df["algorithm"] == "il_sgd") & (df["layer"] == "all") & (df["seed"] == 2)][3]
    df.loc[i, "cos_implicit"] = float("nan")
    row = _evaluate(df, tmp_path)
    assert row["result"] == "FAIL" and math.isnan(row["value"])
    assert "diverged: 1 of 80 rows" in row["detail"] and "seed [2]" in row["detail"]


def test_one_seed_is_not_measurable(tmp_path):
    row = _evaluate(_table(0.05, seeds=1), tmp_path)
    assert row["result"] == "FAIL" and ">= 2 values of 'seed'" in row["detail"]
