"""Paper A's E6 analyses: they run on small settings, and the identities behind them hold."""

from __future__ import annotations

import math

import pytest

from ilrepro.analyses import ANALYSES, analysis_params

SMALL = {
    "prox_objective": {"samples": 1, "T": 4, "hidden": [12, 10]},
    "update_alignment": {"updates": 4, "every": 2, "hidden": [12, 10], "seeds": [0, 1]},
    "target_activity": {"updates": 4, "every": 2, "hidden": [12, 10]},
    "toy_alignment": {"samples": 3, "alphas": [0.1, 10.0], "T": 10},
}


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_analysis_runs_and_is_finite(kind):
    df = ANALYSES[kind].fn(analysis_params(kind, SMALL[kind]))
    assert len(df) > 0
    # (t and residual are filled only on the rows they belong to)
    num = df.select_dtypes("number").drop(columns=[c for c in ("t", "residual") if c in df.columns])
    assert num.notna().all().all(), num.isna().sum()


def test_unknown_analysis_parameter_is_named():
    with pytest.raises(KeyError, match="'sample' is not a parameter of analysis kind 'toy_alignment'"):
        analysis_params("toy_alignment", {"sample": 3})


def test_il_prox_update_reaches_hidden_targets_exactly():
    """B=1, eps=0: IL-prox's update is the normalised LMS step that makes each layer predict its target
    from its (target) input, so after the update the feedforward pass reproduces every inferred hidden
    activity exactly (float64). IL-SGD's update does not."""
    df = ANALYSES["target_activity"].fn(
        analysis_params("target_activity", {"updates": 6, "every": 3, "hidden": [12, 10], "algorithms": {"il_prox": 2.5, "il_sgd": 0.05}})
    )
    hidden = df[df["layer"] != "output"]
    prox, sgd = hidden[hidden["algorithm"] == "il_prox"], hidden[hidden["algorithm"] == "il_sgd"]
    assert prox["dist_after"].max() < 1e-10 < prox["dist_before"].min()
    assert sgd["dist_after"].min() > 1e-6


def test_prox_objective_floor_is_the_implicit_step():
    """No update can beat the exact proximal optimum (up to the solver's tolerance)."""
    df = ANALYSES["prox_objective"].fn(analysis_params("prox_objective", {"samples": 2, "T": 3, "hidden": [12, 10]}))
    for _, d in df.groupby("sample"):
        floor = float(d.loc[d["method"] == "implicit SGD", "P"].iloc[0])
        assert d["P"].min() >= floor - 1e-6
        assert math.isfinite(floor)


def test_update_alignment_table_is_long_per_layer_and_seed():
    """One row per (algorithm, seed, point, layer): "all" and each layer; the baseline cos(BP, implicit)
    and the solver's accuracy beside the two cosines; standard IL (il_sgd) among the defaults."""
    p = analysis_params("update_alignment", {"updates": 5, "every": 2, "hidden": [12, 10], "seeds": [0, 3], "solver_check_every": 2})
    assert set(p["algorithms"]) == {"il_sgd", "il_prox"}
    df = ANALYSES["update_alignment"].fn(p)
    assert len(df) == 2 * 2 * 3 * 4  # algorithms x seeds x points (0, 2, 4) x layers
    assert sorted(df["layer"].unique()) == ["all", "layer 0", "layer 1", "layer 2"]
    assert sorted(df["seed"].unique()) == [0, 3] and sorted(df["update"].unique()) == [0, 2, 4]
    # the solver's accuracy is a property of the point: the same on each of its layer rows; measured at
    # every solver_check_every-th point (updates 0 and 4), not measured (NaN) at the others
    checked = df[df["update"] != 2]
    per_point = checked.groupby(["algorithm", "seed", "update"])[["solver_rel_dist", "solver_cos", "solver_residual"]].nunique()
    assert (per_point == 1).all().all()
    assert df.loc[df["update"] == 2, ["solver_rel_dist", "solver_cos"]].isna().all().all()
    assert df["solver_residual"].notna().all()
    assert checked["solver_cos"].min() > 0.99 and (df["cos_bp_implicit"].abs() <= 1 + 1e-12).all()
    # seeds differ (the network and the sample order)
    a = df[(df["seed"] == 0) & (df["layer"] == "all")]["cos_bp"].to_numpy()
    b = df[(df["seed"] == 3) & (df["layer"] == "all")]["cos_bp"].to_numpy()
    assert not (a == b).all()
