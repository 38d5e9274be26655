"""Paper A's E6 analyses: they run on small settings, and the identities behind them hold."""

from __future__ import annotations

import math

import pytest

from ilrepro.analyses import ANALYSES, analysis_params

SMALL = {
    "prox_objective": {"samples": 1, "T": 4, "hidden": [12, 10]},
    "update_alignment": {"updates": 4, "every": 2, "hidden": [12, 10]},
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
