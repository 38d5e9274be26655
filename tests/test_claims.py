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
