"""The papers' testable claims, checked by the pipeline from aggregated results.

Each claim in the config names a *check* (a small function below that computes one number from the
aggregated tables), its inputs, a threshold and a direction; the result is a row of
``results/claims/<config>.csv`` with the paper's statement, the quantity measured, its value, the threshold and
pass/fail. A claim that cannot be measured (missing table, NaN) fails with the reason; nothing is hidden.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from . import layout

__all__ = ["CHECKS", "COLUMNS", "evaluate_claims", "claim_inputs"]

COLUMNS = ["claim", "paper", "figure", "statement", "quantity", "value", "threshold", "result", "detail", "threshold_source"]

Tables = dict[str, pd.DataFrame]  # "<experiment>/summary", "<experiment>/metrics", "<analysis>"


def _summary(t: Tables, p: dict[str, Any]) -> pd.DataFrame:
    return t[f"{p['experiment']}/summary"]


def _selected(summary: pd.DataFrame, algo: str) -> pd.Series:
    rows = summary[(summary["algo"] == algo) & summary["selected"]]
    if rows.empty:
        raise KeyError(f"no algorithm entry '{algo}' in the summary")
    return rows.iloc[0]


def spread_ratio(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """std over learning rates of a summary column for ``algo``, divided by the same for ``baseline``."""
    s = _summary(t, p)
    col = p.get("column", "final_acc_mean")
    a, b = (s.loc[s["algo"] == k, col].std() for k in (p["algo"], p["baseline"]))
    return float(a / b), f"std over α of {col}: {p['algo']} {a:.4g}, {p['baseline']} {b:.4g}"


def early_lead(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """Mean test accuracy of ``algo`` minus ``baseline`` (selected learning rates) at the first evaluation
    at or after ``fraction`` of the run."""
    s, m = _summary(t, p), t[f"{p['experiment']}/metrics"]
    at = m["update"].max() * float(p.get("fraction", 0.2))
    u = m.loc[m["update"] >= at, "update"].min()
    accs = {}
    for k in (p["algo"], p["baseline"]):
        row = _selected(s, k)
        sel = m[(m["algo"] == k) & (m["lr"] == row["lr"]) & (m["update"] == u)]
        accs[k] = float(sel["test_acc"].mean())
    diff = accs[p["algo"]] - accs[p["baseline"]]
    return diff, f"test accuracy at update {int(u)}: {p['algo']} {accs[p['algo']]:.3f}, {p['baseline']} {accs[p['baseline']]:.3f}"


def selected_ratio(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """Ratio of a summary column, ``algo`` over ``baseline``, at their selected learning rates."""
    s = _summary(t, p)
    col = p["column"]
    a, b = (float(_selected(s, k)[col]) for k in (p["algo"], p["baseline"]))
    return a / b, f"{col}: {p['algo']} {a:.4g}, {p['baseline']} {b:.4g}"


def selected_abs_diff(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """|algo - baseline| of a summary column at their selected learning rates: "the same as" is a small
    absolute difference (a ratio below 1 would also pass when the algorithm is worse)."""
    s = _summary(t, p)
    col = p["column"]
    a, b = (float(_selected(s, k)[col]) for k in (p["algo"], p["baseline"]))
    return abs(a - b), f"{col}: {p['algo']} {a:.6g}, {p['baseline']} {b:.6g}"


def _table(t: Tables, p: dict[str, Any]) -> pd.DataFrame:
    """An analysis table, or an experiment's metrics table (every evaluation row of every run)."""
    return t[p["analysis"]] if "analysis" in p else t[f"{p['experiment']}/metrics"]


def _where(df: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    for k, v in where.items():
        df = df[df[k].isin(v if isinstance(v, list) else [v])]
    return df


def group_mean_diff(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis table: mean of ``column`` where ``by == a`` minus where ``by == b``."""
    df = _where(_table(t, p), p.get("where", {}))
    ma, mb = (float(df.loc[df[p["by"]] == k, p["column"]].mean()) for k in (p["a"], p["b"]))
    return ma - mb, f"mean {p['column']}: {p['a']} {ma:.4g}, {p['b']} {mb:.4g}"


def column_diff(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis table: mean of column ``a`` minus mean of column ``b`` (rows filtered by ``where``)."""
    df = _where(_table(t, p), p.get("where", {}))
    ma, mb = float(df[p["a"]].mean()), float(df[p["b"]].mean())
    return ma - mb, f"mean {p['a']} {ma:.4g}, mean {p['b']} {mb:.4g}"


def column_stat(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis (or experiment metrics) table: ``stat`` (max, min, mean, median) of ``column``
    over the rows that ``where`` keeps."""
    df = _where(_table(t, p), p.get("where", {}))
    v = float(getattr(df[p["column"]], p.get("stat", "max"))())
    return v, f"{p.get('stat', 'max')} of {p['column']} over {len(df)} rows"


def loglog_slope(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """Least-squares slope of log10(y) against log10(x) (rows filtered by ``where``; x range optional)."""
    df = _where(_table(t, p), p.get("where", {}))
    df = df[(df[p["x"]] > 0) & (df[p["y"]] > 0)]
    if "x_range" in p:
        lo, hi = p["x_range"]
        df = df[(df[p["x"]] >= lo) & (df[p["x"]] <= hi)]
    g = df.groupby(p["x"])[p["y"]].mean()
    slope = float(np.polyfit(np.log10(g.index.to_numpy(float)), np.log10(g.to_numpy(float)), 1)[0])
    return slope, f"fit over {len(g)} values of {p['x']} in [{g.index.min():.3g}, {g.index.max():.3g}]"


def paired_diff_ci(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis table (rows filtered by ``where``): per ``unit`` (default ``seed``), the mean over its
    rows (points) of column ``a`` minus column ``b``; then the mean over units and its Student-t
    confidence interval (``level``, default 0.95). The value is the interval's lower bound (> 0: ``a``
    exceeds ``b`` beyond the seed-to-seed spread). The detail: mean, interval, number of units, the
    fraction of rows where a > b and, with ``reference`` (a column), its mean (e.g. how far apart the
    two things compared are). A NaN in a compared column is a diverged row: the value is NaN and the
    detail counts them (never dropped)."""
    from scipy import stats  # (a dependency of scikit-learn)

    df = _where(_table(t, p), p.get("where", {}))
    unit, level = p.get("unit", "seed"), float(p.get("level", 0.95))
    cols = [p["a"], p["b"]] + ([p["reference"]] if "reference" in p else [])
    if df.empty:
        raise ValueError(f"no rows where {p.get('where', {})}")
    bad = df[cols].isna().any(axis=1)
    if bad.any():
        units = sorted(df.loc[bad, unit].unique().tolist())
        return float("nan"), f"diverged: {int(bad.sum())} of {len(df)} rows have NaN in {cols} ({unit} {units})"
    per_unit = (df[p["a"]] - df[p["b"]]).groupby(df[unit]).mean()
    n = len(per_unit)
    if n < 2:
        raise ValueError(f"a confidence interval needs >= 2 values of '{unit}', got {n}")
    mean, se = float(per_unit.mean()), float(per_unit.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    lo, hi = mean - half, mean + half
    closer = float((df[p["a"]] > df[p["b"]]).mean())
    detail = (f"mean {p['a']} - {p['b']} {mean:.4g}, {level:.0%} CI [{lo:.4g}, {hi:.4g}] over {n} {unit}s; "
              f"{p['a']} > {p['b']} at {closer:.0%} of {len(df)} points")
    if "reference" in p:
        detail += f"; mean {p['reference']} {float(df[p['reference']].mean()):.4g}"
    return lo, detail


CHECKS: dict[str, Callable[[Tables, dict[str, Any]], tuple[float, str]]] = {
    f.__name__: f
    for f in (spread_ratio, early_lead, selected_ratio, selected_abs_diff, group_mean_diff, column_diff, column_stat, loglog_slope,
              paired_diff_ci)
}


def claim_inputs(claims: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The tables the claims read, as a mapping from the key a check looks a table up by
    (``<experiment>/summary``, ``<experiment>/metrics``, ``<analysis>``) to its file."""
    out: dict[str, str] = {}
    for c in claims.values():
        p = c.get("params", {})
        if "experiment" in p:
            out[f"{p['experiment']}/summary"] = layout.experiment_file(p["experiment"], "summary.csv")
            out[f"{p['experiment']}/metrics"] = layout.experiment_file(p["experiment"], "metrics.parquet")
        if "analysis" in p:
            out[p["analysis"]] = layout.analysis_file(p["analysis"], "parquet")
    return dict(sorted(out.items()))


def _load(inputs: Mapping[str, str | Path]) -> Tables:
    return {key: pd.read_csv(path) if str(path).endswith(".csv") else pd.read_parquet(path) for key, path in inputs.items()}


def evaluate_claims(claims: dict[str, dict[str, Any]], inputs: Mapping[str, str | Path]) -> pd.DataFrame:
    """One row per claim (:data:`COLUMNS`) from the tables ``inputs`` maps (see :func:`claim_inputs`)."""
    tables = _load(inputs)
    rows = []
    for name, c in claims.items():
        thr, direction = float(c["threshold"]), c["direction"]
        try:
            value, detail = CHECKS[c["check"]](tables, c.get("params", {}))
        except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
            value, detail = float("nan"), f"not measurable: {exc}"
        ok = math.isfinite(value) and (value < thr if direction == "below" else value > thr)
        rows.append(
            {
                "claim": name,
                "paper": c["paper"],
                "figure": c.get("figure", ""),
                "statement": c["statement"],
                "quantity": c["quantity"],
                "value": value,
                "threshold": f"{'<' if direction == 'below' else '>'} {thr:g}",
                "result": "pass" if ok else "FAIL",
                "detail": detail,
                "threshold_source": c.get("source", ""),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
