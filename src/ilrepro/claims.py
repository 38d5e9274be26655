"""The papers' testable claims, checked by the pipeline from aggregated results.

Each claim in the config names a *check* (a small function below that computes one number from the
aggregated tables), its inputs, a threshold and a direction; the result is a row of
``results/claims/<config>.csv`` with the paper's statement, the quantity measured, its value, the threshold and
pass/fail. A claim that cannot be measured (missing table, NaN) fails with the reason; nothing is hidden.

NaN is never dropped from a statistic: a NaN in a table a claim reads is a diverged run, and the claim's
detail says how many. Each check says how it counts them: a diverged run's accuracy is 0 (the worst case),
a diverged distance or step is infinite, and a mean over rows with a NaN is NaN (the claim fails, saying so).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from . import layout

__all__ = ["CHECKS", "COLUMNS", "evaluate_claims", "claim_inputs", "compare_to_reference"]

COLUMNS = ["claim", "paper", "figure", "statement", "quantity", "value", "threshold", "result", "detail", "threshold_source"]

Tables = dict[str, pd.DataFrame]  # "<experiment>/summary", "<experiment>/metrics", "<analysis>"


def _summary(t: Tables, p: dict[str, Any]) -> pd.DataFrame:
    return t[f"{p['experiment']}/summary"]


def _metrics(t: Tables, p: dict[str, Any]) -> pd.DataFrame:
    return t[f"{p['experiment']}/metrics"]


def _selected(summary: pd.DataFrame, algo: str) -> pd.Series:
    rows = summary[(summary["algo"] == algo) & summary["selected"]]
    if rows.empty:
        raise KeyError(f"no algorithm entry '{algo}' in the summary")
    return rows.iloc[0]


def _nan_note(values: pd.Series | pd.DataFrame, what: str = "rows") -> str:
    """'' or '; k of n <what> NaN (diverged)'."""
    k = int(np.asarray(values.isna()).sum())
    return f"; {k} of {values.size} {what} NaN (diverged)" if k else ""


def spread_ratio(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """std over learning rates of a summary column for ``algo``, divided by the same for ``baseline``
    (a NaN entry, a diverged rate, makes it NaN: std would drop it)."""
    s = _summary(t, p)
    col = p.get("column", "final_acc_mean")
    cols = [s.loc[s["algo"] == k, col] for k in (p["algo"], p["baseline"])]
    a, b = (c.std(skipna=False) for c in cols)
    return float(a / b), f"std over α of {col}: {p['algo']} {a:.4g}, {p['baseline']} {b:.4g}" + _nan_note(pd.concat(cols), "rates")


def _final_runs(t: Tables, p: dict[str, Any]) -> pd.DataFrame:
    """One row per run (algo, lr, seed) of an experiment's metrics table: its last evaluation, with
    ``final_acc`` (a run that diverged, stopped early, or whose accuracy is NaN counts 0: the worst case),
    ``diverged`` and ``descending`` (its final test loss is below its initial one: a run still coming down
    from its initialisation, not one thrown off by its steps)."""
    m = _metrics(t, p).sort_values("update")
    keys = ["algo", "lr", "seed"]
    last = m.groupby(keys).tail(1).set_index(keys)
    start = m.groupby(keys).head(1).set_index(keys)["test_loss"]
    diverged = (last["status"] == "diverged") if "status" in last.columns else pd.Series(False, index=last.index)
    diverged |= last["test_acc"].isna() | (last["update"] < m["update"].max())
    out = pd.DataFrame({"final_acc": last["test_acc"].where(~diverged, 0.0), "diverged": diverged})
    out["descending"] = (last["test_loss"] < start.reindex(out.index)) & ~diverged
    return out.reset_index()


def worst_final_over_large_lr(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """Stability across learning rates in the paper's sense: over every rate at or above ``baseline``'s
    own best rate (its selected one), the worst mean-over-seeds final accuracy of ``algo`` minus that of
    ``baseline``. Diverged runs count accuracy 0. Tiny rates, where every method is still climbing at the
    end of the run, do not enter (they test the run length, not stability)."""
    s, runs = _summary(t, p), _final_runs(t, p)
    lr_star = float(_selected(s, p["baseline"])["lr"])
    worst, parts = {}, []
    for k in (p["algo"], p["baseline"]):
        r = runs[(runs["algo"] == k) & (runs["lr"] >= lr_star)]
        if r.empty:
            raise KeyError(f"no runs of '{k}' at learning rates >= {lr_star:g}")
        per_lr = r.groupby("lr")["final_acc"].mean()
        worst[k] = float(per_lr.min())
        parts.append(f"{k} worst {worst[k]:.3f} at α={per_lr.idxmin():g} (worst seed {r['final_acc'].min():.3f}, "
                     f"{int(r['diverged'].sum())} of {len(r)} runs diverged)")
    return worst[p["algo"]] - worst[p["baseline"]], f"α >= {lr_star:g} ({p['baseline']}'s best): " + "; ".join(parts)


def _lr_classes(runs: pd.DataFrame, drop: float) -> pd.Series:
    """Each learning rate of one algorithm: diverged (any seed), stable (mean final accuracy within
    ``drop`` of the best rate's), under-trained (below that, at a rate smaller than the best one, with every
    seed's test loss still below its initial value: too slow for the run length) or unstable (below it
    otherwise: thrown off by its steps)."""
    g = runs.groupby("lr")
    acc, div, desc = g["final_acc"].mean(), g["diverged"].any(), g["descending"].all()
    ok = acc[~div]
    best_lr = float(ok.idxmax()) if len(ok) else math.inf
    best = float(ok.max()) if len(ok) else 0.0
    cls = pd.Series("unstable", index=acc.index)
    cls[acc >= best - drop] = "stable"
    cls[(acc < best - drop) & (acc.index < best_lr) & desc] = "under-trained"
    cls[div] = "diverged"
    return cls


def stable_fraction(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """The fraction of learning rates at which ``algo`` neither diverges nor ends more than ``drop``
    (default 0.05: 5 points) below its own best rate's final accuracy, minus the same for ``baseline``.
    Rates too small for the run length (under-trained, :func:`_lr_classes`) are reported and left out."""
    runs = _final_runs(t, p)
    drop = float(p.get("drop", 0.05))
    frac, parts = {}, []
    for k in (p["algo"], p["baseline"]):
        cls = _lr_classes(runs[runs["algo"] == k], drop)
        if cls.empty:
            raise KeyError(f"no runs of '{k}'")
        counted = cls[cls != "under-trained"]
        frac[k] = float((counted == "stable").mean()) if len(counted) else float("nan")
        parts.append(f"{k} {frac[k]:.2f} (" + ", ".join(f"α={lr:g} {c}" for lr, c in cls.items()) + ")")
    return frac[p["algo"]] - frac[p["baseline"]], "; ".join(parts)


def step_growth(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """How ``algo``'s largest update grows with the learning rate: the log-log slope, over rates >=
    ``lr_min``, of the worst seed's largest ||dtheta|| of the run (``delta_norm_max``, every update, where
    tracked; else the larger of the first update's and the evaluated ones). 0 = bounded, 1 = grows like α
    (explicit SGD). A run whose step is non-finite (diverged) makes the slope infinite; runs that die
    after an explosive first step (||dtheta|| 0 afterwards) are counted by their largest step."""
    m = _metrics(t, p)
    m = m[(m["algo"] == p["algo"]) & (m["lr"] >= float(p.get("lr_min", 0.0)))]
    if m.empty:
        raise KeyError(f"no runs of '{p['algo']}'")
    if "delta_norm_max" in m.columns:
        cols = ["delta_norm_max", "delta_norm_first"]
    else:
        cols = [c for c in ("delta_norm_first", "delta_norm") if c in m.columns]
    # evaluation rows (a per-update table's rows between evaluations have no step measured), update 0 aside
    evals = set(m.loc[m["test_loss"].notna(), "update"]) | set(m.groupby(["lr", "seed"])["update"].max())
    moved = m[m["update"].isin(evals) & (m["update"] > 0)]
    vals = moved[cols].to_numpy(float)
    run_bad = pd.Series(~np.isfinite(vals).all(axis=1), index=moved.index)
    if "status" in moved.columns:
        run_bad |= moved["status"] == "diverged"
    keys = [moved["lr"], moved["seed"]]
    # a NaN or infinite step (or a diverged run) is an unbounded step: +inf, never dropped by max()
    bad = run_bad.groupby(keys).any()
    step = moved[cols].max(axis=1).groupby(keys).max()
    step[bad] = np.inf
    final = m.sort_values("update").groupby(["lr", "seed"]).tail(1).set_index(["lr", "seed"])["delta_norm"]
    dead = int(((final == 0) & ~bad.reindex(final.index)).sum())
    worst = step.groupby("lr").max()
    detail = (f"worst-seed largest ||dθ|| per α: " + ", ".join(f"{lr:g}: {v:.3g}" for lr, v in worst.items())
              + f"; {int(bad.sum())} of {len(step)} runs diverged (counted as unbounded), {dead} dead (||dθ|| 0 at the end)")
    if not np.isfinite(worst.to_numpy()).all():
        return math.inf, detail
    if len(worst) < 2 or (worst <= 0).any():
        raise ValueError(f"needs >= 2 learning rates with a positive step: {detail}")
    slope = float(np.polyfit(np.log10(worst.index.to_numpy(float)), np.log10(worst.to_numpy(float)), 1)[0])
    return slope, detail


def early_lead(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """How far ``algo`` is ahead of ``baseline`` (selected learning rates) early in training: with
    ``until``, the mean over every evaluation in (0, until] (the paper's early window, e.g. the first 2,000
    updates its E2 zoom shows) of the mean-over-seeds ``column``; else at the first evaluation at or after
    ``fraction`` of the run. ``column`` defaults to test accuracy (``algo`` minus ``baseline``); with
    ``better: lower`` (a loss, e.g. the autoencoder's reconstruction BCE) it is ``baseline`` minus ``algo``.
    A seed that diverged before an evaluation counts as the worst there: accuracy 0, loss +inf."""
    s, m = _summary(t, p), _metrics(t, p)
    col, lower = p.get("column", "test_acc"), p.get("better", "higher") == "lower"
    evals = m.loc[m[col].notna(), "update"]  # evaluations (a per-update row has no test measure)
    if "until" in p:
        at = sorted(u for u in evals.unique() if 0 < u <= int(p["until"]))
        if not at:
            raise ValueError(f"no evaluation in (0, {p['until']}]")
        where = f"mean over {len(at)} evaluations at updates {int(at[0])}-{int(at[-1])}"
    else:
        at = [evals[evals >= m["update"].max() * float(p.get("fraction", 0.2))].min()]
        where = f"at update {int(at[0])}"
    vals, notes = {}, []
    for k in (p["algo"], p["baseline"]):
        row = _selected(s, k)
        mine = m[(m["algo"] == k) & (m["lr"] == row["lr"])]
        grid = mine.pivot_table(index="update", columns="seed", values=col, aggfunc="first", dropna=False)
        grid = grid.reindex(index=at, columns=sorted(mine["seed"].unique()))
        gone = int(grid.isna().to_numpy().sum())  # stopped (diverged) before an evaluation, or NaN there
        if gone:
            notes.append(f"{gone} of {grid.size} {k} (seed, evaluation) values diverged (counted {'+inf' if lower else '0'})")
        vals[k] = float(grid.fillna(math.inf if lower else 0.0).mean(axis=1).mean())
    a, b = vals[p["algo"]], vals[p["baseline"]]
    lead = b - a if lower else a - b
    detail = f"{col} {where}: {p['algo']} {a:.4g}, {p['baseline']} {b:.4g}"
    return lead, detail + "".join(f"; {n}" for n in notes)


def selected_ratio(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """Ratio of a summary column, ``algo`` over ``baseline``, at their selected learning rates."""
    s = _summary(t, p)
    col = p["column"]
    a, b = (float(_selected(s, k)[col]) for k in (p["algo"], p["baseline"]))
    return a / b, f"{col}: {p['algo']} {a:.4g}, {p['baseline']} {b:.4g}" + _nan_note(pd.Series([a, b]), "values")


def path_to_accuracy(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """"Shorter paths to minima" read as the path to a common quality: per run (selected rates), the path
    length sum ||dtheta|| travelled until the first evaluation at which test accuracy reaches ``level``
    (default 0.95) times the lower of the two algorithms' mean final accuracies; the ratio of ``algo``'s
    mean over seeds to ``baseline``'s. A run that never reaches it (or diverged) has an infinite path."""
    s, m = _summary(t, p), _metrics(t, p)
    rows = {k: _selected(s, k) for k in (p["algo"], p["baseline"])}
    target = float(p.get("level", 0.95)) * min(float(r["final_acc_mean"]) for r in rows.values())
    paths, notes = {}, []
    for k, row in rows.items():
        mine = m[(m["algo"] == k) & (m["lr"] == row["lr"]) & m["test_acc"].notna()].sort_values("update")
        per_seed = []
        for _, run in mine.groupby("seed"):
            hit = run[run["test_acc"] >= target]
            per_seed.append(float(hit["path_length"].iloc[0]) if len(hit) else math.inf)
        missed = sum(math.isinf(v) for v in per_seed)
        if missed:
            notes.append(f"{missed} of {len(per_seed)} {k} seeds never reach it")
        paths[k] = float(np.mean(per_seed)) if per_seed else math.nan
    a, b = paths[p["algo"]], paths[p["baseline"]]
    detail = f"path length to test accuracy {target:.3f}: {p['algo']} {a:.4g}, {p['baseline']} {b:.4g}"
    return a / b, detail + "".join(f"; {n}" for n in notes)


def selected_abs_diff(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """|algo - baseline| of a summary column at their selected learning rates: "the same as" is a small
    absolute difference (a ratio below 1 would also pass when the algorithm is worse)."""
    s = _summary(t, p)
    col = p["column"]
    a, b = (float(_selected(s, k)[col]) for k in (p["algo"], p["baseline"]))
    return abs(a - b), f"{col}: {p['algo']} {a:.6g}, {p['baseline']} {b:.6g}" + _nan_note(pd.Series([a, b]), "values")


def _table(t: Tables, p: dict[str, Any]) -> pd.DataFrame:
    """An analysis table, or an experiment's metrics table (every evaluation row of every run)."""
    return t[p["analysis"]] if "analysis" in p else _metrics(t, p)


def _where(df: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    for k, v in where.items():
        df = df[df[k].isin(v if isinstance(v, list) else [v])]
    return df


def group_mean_diff(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis table: mean of ``column`` where ``by == a`` minus where ``by == b`` (rows kept by
    ``where``, and each side's further by ``where_a`` / ``where_b``, e.g. one inference step of one panel)."""
    df = _where(_table(t, p), p.get("where", {}))
    sides = [_where(df[df[p["by"]] == k], p.get(f"where_{s}", {})) for k, s in ((p["a"], "a"), (p["b"], "b"))]
    if any(side.empty for side in sides):
        raise ValueError(f"no rows for {p['a'] if sides[0].empty else p['b']}")
    ma, mb = (float(side[p["column"]].mean(skipna=False)) for side in sides)
    return ma - mb, f"mean {p['column']}: {p['a']} {ma:.4g}, {p['b']} {mb:.4g}" + _nan_note(pd.concat(sides)[p["column"]])


def column_diff(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis table: mean of column ``a`` minus mean of column ``b`` (rows filtered by ``where``)."""
    df = _where(_table(t, p), p.get("where", {}))
    ma, mb = float(df[p["a"]].mean(skipna=False)), float(df[p["b"]].mean(skipna=False))
    return ma - mb, f"mean {p['a']} {ma:.4g}, mean {p['b']} {mb:.4g}" + _nan_note(df[[p["a"], p["b"]]])


def column_stat(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """In an analysis (or experiment metrics) table: ``stat`` (max, min, mean, median) of ``column``
    over the rows that ``where`` keeps (and, with ``from_update``, whose ``update`` is at least that: 1
    leaves out a metrics table's initial evaluation, where no update has been measured). A NaN row is a
    diverged one: it counts as +inf (a divergence, a distance, a cost that blew up), or as ``nan_as``
    where the config says (e.g. 0 for an accuracy, -1 for a cosine). The detail gives the same statistic
    of each column in ``also`` and, for min / max, the 1st / 99th percentile and the median of ``column``."""
    df = _where(_table(t, p), p.get("where", {}))
    if "from_update" in p:
        df = df[df["update"] >= int(p["from_update"])]
    if df.empty:
        raise ValueError(f"no rows where {p.get('where', {})}" + (f" from update {p['from_update']}" if "from_update" in p else ""))
    stat, fill = p.get("stat", "max"), float(p.get("nan_as", math.inf))
    col = df[p["column"]].astype(float)
    v = float(getattr(col.fillna(fill), stat)())
    nan_as = p.get("nan_as", "inf")
    note = _nan_note(col) + (f", counted as {nan_as}" if col.isna().any() else "")
    detail = f"{stat} of {p['column']} over {len(df)} rows" + note
    if stat in ("min", "max"):
        q, name = (0.01, "1st") if stat == "min" else (0.99, "99th")
        filled = col.fillna(fill)
        detail += f"; {name} percentile {filled.quantile(q):.7g}, median {filled.median():.7g}"
    for other in p.get("also", []):
        o = df[other].astype(float)
        detail += f"; {stat} of {other} {float(getattr(o.fillna(fill), stat)()):.7g}" + _nan_note(o)
    return v, detail


def loglog_slope(t: Tables, p: dict[str, Any]) -> tuple[float, str]:
    """Least-squares slope of log10(y) against log10(x) (rows filtered by ``where``; x range optional)."""
    df = _where(_table(t, p), p.get("where", {}))
    if "x_range" in p:
        lo, hi = p["x_range"]
        df = df[(df[p["x"]] >= lo) & (df[p["x"]] <= hi)]
    if df[p["y"]].isna().any():  # a diverged point is not left out of the fit
        at = sorted(df.loc[df[p["y"]].isna(), p["x"]].unique())
        return float("nan"), f"{p['y']} NaN (diverged) at {p['x']} = {', '.join(f'{x:g}' for x in at)}" + _nan_note(df[p["y"]])
    zero = int((df[p["y"]] <= 0).sum())  # exact agreement (0) has no logarithm: named, not fitted
    df = df[(df[p["x"]] > 0) & (df[p["y"]] > 0)]
    g = df.groupby(p["x"])[p["y"]].mean()
    slope = float(np.polyfit(np.log10(g.index.to_numpy(float)), np.log10(g.to_numpy(float)), 1)[0])
    return slope, f"fit over {len(g)} values of {p['x']} in [{g.index.min():.3g}, {g.index.max():.3g}]" + (f"; {zero} rows <= 0 left out" if zero else "")


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
    for f in (
        spread_ratio, worst_final_over_large_lr, stable_fraction, step_growth, early_lead, selected_ratio,
        selected_abs_diff, path_to_accuracy, group_mean_diff, column_diff, column_stat, loglog_slope, paired_diff_ci,
    )
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
        # an infinite value is a measurement (an unbounded step, a divergence); NaN is not
        ok = not math.isnan(value) and (value < thr if direction == "below" else value > thr)
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


def compare_to_reference(mine: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """A claims table of one's own run beside a kept reference run's (e.g. ``reference/fmnist/claims.csv``):
    per claim both values and results, the difference, and whether the result agrees. A claim in only
    one of the two is listed with the other side empty (never dropped)."""
    keep = ["claim", "paper", "value", "result"]
    both = reference[keep].merge(mine[keep], on=["claim", "paper"], how="outer", suffixes=("_reference", "_yours"))
    both["difference"] = both["value_yours"] - both["value_reference"]
    both["agrees"] = both["result_yours"] == both["result_reference"]
    return both.sort_values(["paper", "claim"]).reset_index(drop=True)
