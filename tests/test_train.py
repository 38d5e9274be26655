"""The training loop: metrics, divergence as a recorded result, determinism, atomic outputs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ilrepro.train import run_and_save, train

SPEC = dict(
    experiment="t", algo="bp", algorithm="bp_sgd", lr=0.05, seed=0, dataset="digits",
    model={"type": "mlp", "hidden": [16]}, batch_size=1, updates=40, eval_every=20,
)


def test_metrics_table_shape_and_learning():
    df, meta = train({**SPEC, "updates": 400, "eval_every": 100, "batch_size": 8, "lr": 0.2})
    assert df["update"].tolist() == [0, 100, 200, 300, 400]
    assert {"test_acc", "test_loss", "test_ce", "delta_norm", "status"} <= set(df.columns)
    assert df["test_acc"].iloc[-1] > df["test_acc"].iloc[0] + 0.3  # it learns
    assert meta["status"] == "ok" and meta["updates_done"] == 400 and meta["updates_per_s"] > 0
    assert math.isnan(df["delta_norm"].iloc[0]) and (df["delta_norm"].iloc[1:] > 0).all()


@pytest.mark.parametrize("algorithm", ["bp_sgd", "il_sgd"])
def test_divergence_is_a_recorded_result(algorithm):
    # (With cross-entropy, BP-SGD at a huge step kills its ReLUs and sits at chance with finite loss;
    # a squared-error output makes its weights blow up to inf/NaN, which is what is tested here.)
    model = {"type": "mlp", "hidden": [16], "output_loss": "mse"}
    hp = {"T": 3} if algorithm == "il_sgd" else {}
    df, meta = train({**SPEC, "model": model, "algorithm": algorithm, "lr": 1e4, "updates": 200, "eval_every": 10, "hparams": hp})
    assert meta["status"] == "diverged"
    assert meta["updates_done"] < 200
    last = df.iloc[-1]
    assert last["status"] == "diverged" and not math.isfinite(last["test_loss"])


@pytest.mark.parametrize("algorithm", ["bp_sgd", "il_sgd"])
def test_same_seed_is_bit_identical(algorithm):
    spec = {**SPEC, "algorithm": algorithm, "hparams": {"T": 3} if algorithm == "il_sgd" else {}}
    a, _ = train(spec)
    b, _ = train(spec)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    c, _ = train({**spec, "seed": 1})
    assert not c["test_loss"].equals(a["test_loss"])


def test_run_and_save_writes_both_files(tmp_path):
    meta = run_and_save(SPEC, tmp_path / "m.parquet", tmp_path / "meta.json")
    assert meta["status"] == "ok" and meta["runs"] == [{"lr": SPEC["lr"], "seed": 0, "status": "ok", "updates_done": 40}]
    assert json.loads((tmp_path / "meta.json").read_text())["spec"]["algorithm"] == "bp_sgd"
    assert len(pd.read_parquet(tmp_path / "m.parquet")) == 3
    assert not list(tmp_path.glob(".*tmp"))
