"""The claims checks compute what they say, and an unmeasurable claim fails instead of passing."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ilrepro.claims import CHECKS, claim_inputs, evaluate_claims


def _summary():
    rows = []
    for algo, accs in (("il_prox", [0.90, 0.91, 0.92]), ("bp_sgd", [0.5, 0.9, 0.1])):
        for lr, a in zip((0.1, 1.0, 10.0), accs):
            rows.append({"experiment": "e", "algo": algo, "lr": lr, "final_acc_mean": a, "path_length_mean": 10 * a,
                         "selected": a == max(accs)})
    return pd.DataFrame(rows)


def _metrics():
    rows = []
    for algo, lr, acc in (("il_prox", 10.0, 0.8), ("bp_sgd", 1.0, 0.3)):
        for u in (0, 10, 20, 30, 40, 50):
            rows.append({"experiment": "e", "algo": algo, "lr": lr, "seed": 0, "update": u, "test_acc": acc * u / 50})
    return pd.DataFrame(rows)


TABLES = {"e/summary": _summary(), "e/metrics": _metrics()}


def test_spread_ratio():
    v, _ = CHECKS["spread_ratio"](TABLES, {"experiment": "e", "algo": "il_prox", "baseline": "bp_sgd"})
    assert v == pytest.approx(pd.Series([0.9, 0.91, 0.92]).std() / pd.Series([0.5, 0.9, 0.1]).std())


def test_early_lead_reads_the_selected_runs_at_the_fraction():
    v, detail = CHECKS["early_lead"](TABLES, {"experiment": "e", "algo": "il_prox", "baseline": "bp_sgd", "fraction": 0.2})
    assert "update 10" in detail
    assert v == pytest.approx(0.8 * 10 / 50 - 0.3 * 10 / 50)


def test_selected_ratio():
    v, _ = CHECKS["selected_ratio"](TABLES, {"experiment": "e", "algo": "il_prox", "baseline": "bp_sgd", "column": "path_length_mean"})
    assert v == pytest.approx(9.2 / 9.0)


def test_loglog_slope_recovers_a_power_law():
    df = pd.DataFrame({"beta": [1e-3, 1e-2, 1e-1, 1.0], "err": [3e-6, 3e-4, 3e-2, 3.0]})
    v, _ = CHECKS["loglog_slope"]({"a": df}, {"analysis": "a", "x": "beta", "y": "err"})
    assert v == pytest.approx(2.0)


def test_direction_and_unmeasurable_claims(tmp_path):
    s = tmp_path / "e" / "summary.csv"
    s.parent.mkdir()
    _summary().to_csv(s, index=False)
    _metrics().to_parquet(tmp_path / "e" / "metrics.parquet")
    base = {"paper": "A", "statement": "s", "quantity": "q", "check": "spread_ratio",
            "params": {"experiment": "e", "algo": "il_prox", "baseline": "bp_sgd"}}
    claims = {
        "holds": {**base, "threshold": 1.0, "direction": "below"},
        "fails": {**base, "threshold": 1.0, "direction": "above"},
        "missing": {**base, "params": {"experiment": "e", "algo": "nope", "baseline": "bp_sgd", "column": "no_such"},
                    "threshold": 1.0, "direction": "below"},
    }
    out = evaluate_claims(claims, {"e/summary": s, "e/metrics": tmp_path / "e" / "metrics.parquet"}).set_index("claim")
    assert out.loc["holds", "result"] == "pass" and out.loc["fails", "result"] == "FAIL"
    assert out.loc["missing", "result"] == "FAIL" and math.isnan(out.loc["missing", "value"])
    assert "not measurable" in out.loc["missing", "detail"]


def test_no_claims_gives_an_empty_table_with_its_columns():
    out = evaluate_claims({}, {})
    assert len(out) == 0 and "result" in out.columns


def test_claim_inputs_map_each_check_key_to_the_layouts_file():
    claims = {"a": {"params": {"experiment": "e"}}, "b": {"params": {"analysis": "z"}}, "c": {"params": {"experiment": "e"}}}
    assert claim_inputs(claims) == {
        "e/metrics": "results/e/metrics.parquet",
        "e/summary": "results/e/summary.csv",
        "z": "results/analyses/z.parquet",
    }


def test_selected_abs_diff_is_two_sided(tmp_path):
    summary = pd.DataFrame({"algo": ["zil", "bp_sgd"], "lr": [0.1, 0.1], "selected": [True, True], "final_acc_mean": [0.80, 0.83]})
    value, detail = CHECKS["selected_abs_diff"]({"e/summary": summary}, {"experiment": "e", "algo": "zil", "baseline": "bp_sgd",
                                                                        "column": "final_acc_mean"})
    assert value == pytest.approx(0.03) and "zil 0.8" in detail  # worse by 3 points: not "the same"
    summary["final_acc_mean"] = [0.86, 0.83]
    assert CHECKS["selected_abs_diff"]({"e/summary": summary}, {"experiment": "e", "algo": "zil", "baseline": "bp_sgd",
                                                                "column": "final_acc_mean"})[0] == pytest.approx(0.03)


# --- referee-grade metrics (issue 14, item 2): each on a synthetic sweep that passes and one that fails ---

def _sweep(curves: dict[tuple[str, float], list[float]], steps: dict[tuple[str, float], float] | None = None,
           diverged: set[tuple[str, float]] = frozenset(), seeds=(0, 1)) -> dict[str, pd.DataFrame]:
    """A metrics table (and its summary) from per-(algo, lr) accuracy curves at updates 0, 25, 50, 75, 100;
    ``steps``: the largest ||dtheta|| of the run; a ``diverged`` entry stops at update 50 with NaN."""
    rows = []
    for (algo, lr), curve in curves.items():
        for seed in seeds:
            for u, acc in zip((0, 25, 50, 75, 100), curve):
                bad = (algo, lr) in diverged and u >= 50
                if (algo, lr) in diverged and u > 50:
                    break
                step = (steps or {}).get((algo, lr), 0.1)
                rows.append({"algo": algo, "lr": lr, "seed": seed, "update": u, "test_acc": math.nan if bad else acc,
                             "test_loss": math.nan if bad else 1.0 - acc,
                             "delta_norm": math.nan if u == 0 else (math.inf if bad else step / 10),
                             "delta_norm_first": math.nan if u == 0 else step,
                             "delta_norm_max": math.nan if u == 0 else (math.inf if bad else step),
                             "status": "diverged" if (algo, lr) in diverged else "ok"})
    m = pd.DataFrame(rows)
    final = m.sort_values("update").groupby(["algo", "lr", "seed"]).tail(1).groupby(["algo", "lr"])["test_acc"].mean().reset_index()
    final["selected"] = final.index.isin(final["test_acc"].fillna(-1).groupby(final["algo"]).idxmax())
    return {"e/metrics": m, "e/summary": final.rename(columns={"test_acc": "final_acc_mean"})}


def _stable_sweep() -> dict[str, pd.DataFrame]:
    c = {}
    for lr in (0.01, 0.1, 1.0, 10.0):
        c[("il_prox", lr)] = [0.1, 0.3, 0.6, 0.8, 0.9] if lr > 0.01 else [0.1, 0.12, 0.15, 0.2, 0.3]  # tiny α: climbing
        c[("bp_sgd", lr)] = {0.01: [0.1, 0.2, 0.3, 0.4, 0.5], 0.1: [0.1, 0.5, 0.8, 0.9, 0.92], 1.0: [0.1, 0.1, 0.1, 0.1, 0.1],
                             10.0: [0.1] * 5}[lr]
    steps = {("il_prox", lr): 0.5 for lr in (0.01, 0.1, 1.0, 10.0)} | {("bp_sgd", lr): 5 * lr for lr in (0.01, 0.1, 1.0, 10.0)}
    return _sweep(c, steps, diverged={("bp_sgd", 10.0)})


def test_worst_final_over_large_lr_passes_for_the_stable_method_and_counts_diverged_runs_as_zero():
    t = _stable_sweep()
    v, detail = CHECKS["worst_final_over_large_lr"](t, {"experiment": "e", "algo": "il_prox", "baseline": "bp_sgd"})
    # BP-SGD's best α is 0.1; over α >= 0.1 IL-prox's worst is 0.9, BP-SGD's is the diverged α=10 (0)
    assert v == pytest.approx(0.9 - 0.0)
    assert "bp_sgd worst 0.000 at α=10" in detail and "2 of 6 runs diverged" in detail
    v2, _ = CHECKS["worst_final_over_large_lr"](t, {"experiment": "e", "algo": "bp_sgd", "baseline": "il_prox"})
    assert v2 < 0  # the other way round it fails


def test_stable_fraction_separates_under_training_from_instability():
    t = _stable_sweep()
    v, detail = CHECKS["stable_fraction"](t, {"experiment": "e", "algo": "il_prox", "baseline": "bp_sgd"})
    assert "α=0.01 under-trained" in detail and "α=10 diverged" in detail and "α=1 unstable" in detail
    # IL-prox: 3 of 3 counted rates stable; BP-SGD: 0.01 climbing (left out), 0.1 stable, 1 unstable, 10 diverged
    assert v == pytest.approx(1.0 - 1 / 3)
    v2, _ = CHECKS["stable_fraction"](t, {"experiment": "e", "algo": "bp_sgd", "baseline": "il_prox"})
    assert v2 < 0


def test_step_growth_bounded_vs_growing_and_diverged_is_unbounded():
    t = _stable_sweep()
    bounded, _ = CHECKS["step_growth"](t, {"experiment": "e", "algo": "il_prox"})
    assert bounded == pytest.approx(0.0, abs=1e-9)
    grows, detail = CHECKS["step_growth"](t, {"experiment": "e", "algo": "bp_sgd"})
    assert grows == math.inf and "2 of 8 runs diverged" in detail
    t["e/metrics"] = t["e/metrics"][t["e/metrics"]["lr"] < 10]  # without the diverged rate: slope 1 (~ α)
    assert CHECKS["step_growth"](t, {"experiment": "e", "algo": "bp_sgd"})[0] == pytest.approx(1.0)


def test_step_growth_sees_the_first_explosive_step_of_a_run_that_then_dies():
    t = _sweep({("bp", 1.0): [0.1] * 5, ("bp", 100.0): [0.1] * 5}, {("bp", 1.0): 1.0, ("bp", 100.0): 100.0})
    m = t["e/metrics"]
    m.loc[m["lr"] == 100.0, ["delta_norm", "delta_norm_max"]] = 0.0  # evaluated steps all 0 (dead)...
    v, detail = CHECKS["step_growth"](t, {"experiment": "e", "algo": "bp"})
    assert v == pytest.approx(1.0) and "2 dead" in detail  # ...but the first update's step (100) counts


def test_early_lead_counts_a_seed_that_diverged_before_the_point():
    t = _sweep({("a", 1.0): [0.1, 0.5, 0.6, 0.7, 0.8], ("b", 1.0): [0.1, 0.4, 0.5, 0.6, 0.7]}, diverged={("a", 1.0)})
    v, detail = CHECKS["early_lead"](t, {"experiment": "e", "algo": "a", "baseline": "b", "fraction": 0.7})
    assert v == pytest.approx(0.0 - 0.6) and "2 of 2 a (seed, evaluation) values diverged" in detail


def test_nan_is_diverged_never_dropped():
    df = pd.DataFrame({"variant": ["x", "x", "y"], "divergence": [1e-3, math.nan, 2e-3]})
    v, detail = CHECKS["column_stat"]({"z": df}, {"analysis": "z", "column": "divergence", "stat": "max"})
    assert v == math.inf and "1 of 3 rows NaN (diverged)" in detail  # max() would have dropped it
    v, _ = CHECKS["column_stat"]({"z": df}, {"analysis": "z", "column": "divergence", "stat": "min"})
    assert v == pytest.approx(1e-3)
    v, detail = CHECKS["column_diff"]({"z": df.assign(b=0.0)}, {"analysis": "z", "a": "divergence", "b": "b"})
    assert math.isnan(v) and "NaN (diverged)" in detail
    sl = pd.DataFrame({"beta": [1e-3, 1e-2, 1e-1], "err": [1e-3, math.nan, 1e-1]})
    v, detail = CHECKS["loglog_slope"]({"a": sl}, {"analysis": "a", "x": "beta", "y": "err"})
    assert math.isnan(v) and "at beta = 0.01" in detail


def test_early_lead_on_a_loss_where_lower_is_better():
    t = _sweep({("a", 1.0): [0.1, 0.5, 0.6, 0.7, 0.8], ("b", 1.0): [0.1, 0.4, 0.5, 0.6, 0.7]})
    v, detail = CHECKS["early_lead"](t, {"experiment": "e", "algo": "a", "baseline": "b", "fraction": 0.5,
                                         "column": "test_loss", "better": "lower"})
    assert v == pytest.approx((1 - 0.5) - (1 - 0.6)) and "test_loss at update 50" in detail
    v, _ = CHECKS["early_lead"](t, {"experiment": "e", "algo": "b", "baseline": "a", "fraction": 0.5, "column": "test_loss", "better": "lower"})
    assert v < 0


def test_group_mean_diff_filters_each_side():
    df = pd.DataFrame({"method": ["BP", "IL", "IL", "IL"], "t": [None, 0, 1, 2], "P": [3.0, 5.0, 2.0, 1.0]})
    v, _ = CHECKS["group_mean_diff"]({"z": df}, {"analysis": "z", "by": "method", "a": "BP", "b": "IL", "column": "P", "where_b": {"t": 2}})
    assert v == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no rows for IL"):
        CHECKS["group_mean_diff"]({"z": df}, {"analysis": "z", "by": "method", "a": "BP", "b": "IL", "column": "P", "where_b": {"t": 9}})


def test_an_infinite_value_is_a_measurement_nan_is_not(tmp_path):
    df = pd.DataFrame({"v": [1.0, math.nan]})
    p = tmp_path / "z.parquet"
    df.to_parquet(p)
    base = {"paper": "A", "statement": "s", "quantity": "q", "check": "column_stat", "params": {"analysis": "z", "column": "v"}}
    out = evaluate_claims({"grows": {**base, "threshold": 0.5, "direction": "above"},
                           "bounded": {**base, "threshold": 0.5, "direction": "below"}}, {"z": p}).set_index("claim")
    assert out.loc["grows", "result"] == "pass" and out.loc["bounded", "result"] == "FAIL"  # NaN row -> inf


def test_column_stat_over_updates_of_a_per_update_table():
    """The per-update cosine claim: the initial evaluation (update 0, no update measured) is left out
    with from_update, a diverged update (NaN) counts as nan_as (-1: the worst cosine), and the detail
    gives the same statistic of the ``also`` columns."""
    m = pd.DataFrame({
        "algo": ["pc"] * 4 + ["bp"] * 2, "update": [0, 1, 2, 3, 0, 1],
        "bp_cosine": [math.nan, 0.9991, 0.9995, 0.9993, math.nan, 0.5],
        "bp_cosine_flat": [math.nan, 0.998, 0.9994, 0.999, math.nan, 0.5],
    })
    p = {"experiment": "e", "column": "bp_cosine", "stat": "min", "from_update": 1, "nan_as": -1, "also": ["bp_cosine_flat"], "where": {"algo": "pc"}}
    v, detail = CHECKS["column_stat"]({"e/metrics": m}, p)
    assert v == pytest.approx(0.9991) and "over 3 rows" in detail and "min of bp_cosine_flat 0.998" in detail
    assert "NaN" not in detail and "1st percentile" in detail
    v, _ = CHECKS["column_stat"]({"e/metrics": m}, {**p, "from_update": 0})
    assert v == -1.0  # update 0's NaN, were it counted, would be a divergence
    m.loc[2, "bp_cosine"] = math.nan
    v, detail = CHECKS["column_stat"]({"e/metrics": m}, p)
    assert v == -1.0 and "1 of 3 rows NaN (diverged), counted as -1" in detail


def test_compare_to_reference_lists_every_claim_of_either_table():
    from ilrepro.claims import compare_to_reference

    ref = pd.DataFrame({"claim": ["a", "b"], "paper": ["A", "A"], "value": [1.0, 2.0], "result": ["pass", "FAIL"]})
    mine = pd.DataFrame({"claim": ["a", "c"], "paper": ["A", "A"], "value": [1.5, 3.0], "result": ["pass", "pass"]})
    out = compare_to_reference(mine, ref).set_index("claim")
    assert out.loc["a", "difference"] == pytest.approx(0.5) and out.loc["a", "agrees"]
    assert set(out.index) == {"a", "b", "c"} and not out.loc["b", "agrees"] and not out.loc["c", "agrees"]


def test_early_lead_over_the_papers_early_window():
    t = _sweep({("a", 1.0): [0.1, 0.5, 0.6, 0.7, 0.8], ("b", 1.0): [0.1, 0.3, 0.6, 0.8, 0.9]})
    # over the first 50 updates a leads (0.5, 0.6 vs 0.3, 0.6); at 70 % of the run it trails
    v, detail = CHECKS["early_lead"](t, {"experiment": "e", "algo": "a", "baseline": "b", "until": 50})
    assert v == pytest.approx((0.5 + 0.6) / 2 - (0.3 + 0.6) / 2) and "mean over 2 evaluations at updates 25-50" in detail
    assert CHECKS["early_lead"](t, {"experiment": "e", "algo": "a", "baseline": "b", "fraction": 0.7})[0] < 0


def test_path_to_accuracy_reads_the_path_up_to_a_common_accuracy():
    t = _sweep({("a", 1.0): [0.1, 0.5, 0.8, 0.85, 0.9], ("b", 1.0): [0.1, 0.3, 0.5, 0.8, 0.9]})
    m = t["e/metrics"]
    m["path_length"] = m["update"] * m["algo"].map({"a": 2.0, "b": 1.0})  # a travels twice as fast...
    t["e/summary"]["selected"] = True
    v, detail = CHECKS["path_to_accuracy"](t, {"experiment": "e", "algo": "a", "baseline": "b", "level": 0.8 / 0.9})
    assert v == pytest.approx((2.0 * 50) / (1.0 * 75)) and "test accuracy 0.800" in detail  # ...but gets there sooner
    m.loc[m["algo"] == "b", "test_acc"] = 0.5  # b never reaches it: an infinite path
    t["e/summary"].loc[t["e/summary"]["algo"] == "b", "final_acc_mean"] = 0.9
    v, detail = CHECKS["path_to_accuracy"](t, {"experiment": "e", "algo": "a", "baseline": "b", "level": 0.8 / 0.9})
    assert v == 0.0 and "2 of 2 b seeds never reach it" in detail


def test_step_growth_counts_a_nan_step_as_unbounded_not_dropped():
    t = _sweep({("bp", 1.0): [0.1] * 5, ("bp", 10.0): [0.1] * 5}, {("bp", 1.0): 1.0, ("bp", 10.0): 10.0})
    m = t["e/metrics"]
    nan_run = (m["lr"] == 10.0) & (m["seed"] == 1) & (m["update"] >= 75)
    m.loc[nan_run, ["delta_norm", "delta_norm_max"]] = math.nan  # max() alone would skip these
    v, detail = CHECKS["step_growth"](t, {"experiment": "e", "algo": "bp"})
    assert v == math.inf and "1 of 4 runs diverged" in detail
