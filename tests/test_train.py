"""The training loop: metrics, divergence as a recorded result, determinism, atomic outputs."""

from __future__ import annotations

import json
import math

import pandas as pd
import torch
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


# --- track_bp_cosine: the per-update record (Millidge et al.'s per-batch measures) ---------------------

def test_gradient_agreement_by_hand():
    """Per weight matrix cosine, mean over layers (biases left out), the flattened cosine and the squared
    distance, against numbers worked out by hand on a two-layer net's parameter list [W0, b0, W1, b1]."""
    from ilrepro.runtime import gradient_agreement

    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    a = [t([[1.0, 0.0], [0.0, 0.0]]), t([3.0, 0.0]), t([[1.0, 2.0]]), t([0.0])]
    b = [t([[1.0, 1.0], [0.0, 0.0]]), t([3.0, 0.0]), t([[2.0, -1.0]]), t([0.0])]
    got = gradient_agreement(a, b, [0, 2])
    # W0: 1 / (1 * sqrt 2); W1: (2 - 2) / ... = 0; the biases do not enter
    assert got["layers"] == pytest.approx((1 / math.sqrt(2) + 0.0) / 2, abs=1e-15)
    # flat: dot 1 + 9 + 2 - 2 = 10, |a|^2 = 15, |b|^2 = 16; a - b = (0, -1, 0, 0 | 0, 0 | -1, 3 | 0)
    assert got["flat"] == pytest.approx(10 / math.sqrt(15 * 16), abs=1e-15)
    assert got["sqdist"] == pytest.approx(11.0, abs=1e-15)


def test_gradient_agreement_takes_a_nets_weight_matrices():
    from conftest import small_mlp

    from ilrepro.runtime import gradient_agreement

    net = small_mlp(hidden=(7, 6))
    g = torch.Generator().manual_seed(3)
    a = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in net.params]
    b = [x + 0.5 * torch.randn(x.shape, generator=g, dtype=x.dtype) for x in a]
    per_w = [float(torch.nn.functional.cosine_similarity(a[i].flatten(), b[i].flatten(), dim=0, eps=0.0)) for i in (0, 2, 4)]
    assert net.weight_index == [0, 2, 4]
    assert gradient_agreement(a, b, net.weight_index)["layers"] == pytest.approx(sum(per_w) / 3, rel=1e-12)


BP_SPEC = dict(
    experiment="t", dataset="digits", model={"type": "mlp", "hidden": [8], "activation": "relu", "output_loss": "mse"},
    batch_size=16, updates=7, eval_every=3, seeds=[0, 1], lr=0.05, dtype="float64", track_bp_cosine=True,
)


@pytest.mark.parametrize("stack", [False, True])
def test_track_bp_cosine_records_every_update(stack):
    """A row per update and member; the per-update measures on every row past the initial evaluation, the
    test measures only at the evaluations. BP's own update against BP on the same batch: cosine 1,
    distance 0 (a reference gradient taken on another batch or after the update would not be)."""
    for algo, hp in (("bp_sgd", {}), ("pc_nudge", {"lam": 1e-5, "T": 60, "dt": 0.3})):
        df, meta = train({**BP_SPEC, "algo": algo, "algorithm": algo, "hparams": hp, "stack": stack})
        assert meta["status"] == "ok" and meta["vectorised"] == stack
        for _, run in df.groupby("seed"):
            assert run["update"].tolist() == list(range(8))
            evaluated = run["update"].isin([0, 3, 6, 7])
            assert run.loc[evaluated, "test_acc"].notna().all() and run.loc[~evaluated, "test_acc"].isna().all()
            moved = run[run["update"] >= 1]
            cols = ["bp_cosine", "bp_cosine_flat", "bp_sqdist", "train_acc", "train_loss"]
            assert moved[cols].notna().all().all() and run.loc[run["update"] == 0, cols].isna().all().all()
            if algo == "bp_sgd":
                assert moved["bp_cosine"].to_numpy() == pytest.approx(1.0, abs=1e-12)
                assert moved["bp_sqdist"].max() < 1e-20
            else:
                assert 0.999 < moved["bp_cosine"].min() < 1.0 and 0.999 < moved["bp_cosine_flat"].min()
                assert moved["bp_sqdist"].min() > 0


def test_the_gradient_is_kept_only_where_the_training_reads_it(monkeypatch):
    """The native step at batch 1 writes the gradient out only for ``track_bp_cosine`` (its one reader):
    there it is BP's own (cosine 1, on the native path); elsewhere the step is told not to keep it."""
    from ilrepro.algorithms.base import Algorithm

    seen: list[bool] = []
    step = Algorithm.step

    def spy(self, net, x, target, keep_gradient=True):
        seen.append(keep_gradient)
        return step(self, net, x, target, keep_gradient)

    monkeypatch.setattr(Algorithm, "step", spy)
    df, meta = train({**BP_SPEC, "algo": "bp_sgd", "algorithm": "bp_sgd", "batch_size": 1})
    assert meta["update_path"] == "native" and seen and all(seen)
    moved = df[df["update"] >= 1]
    assert moved["bp_cosine"].to_numpy() == pytest.approx(1.0, abs=1e-12)
    seen.clear()
    train({**BP_SPEC, "algo": "bp_sgd", "algorithm": "bp_sgd", "batch_size": 1, "track_bp_cosine": False})
    assert seen and not any(seen)


def test_train_measures_are_those_of_the_pre_update_model():
    """Full-batch BP-SGD (the batch is the whole training set, so its order does not matter): the train
    loss and accuracy recorded at update u are those of the model before update u, replayed by hand."""
    from ilrepro.algorithms import make_algorithm
    from ilrepro.data import load_configured
    from ilrepro.models import build_model

    data = load_configured("digits", {}).to(torch.device("cpu"), torch.float64)
    n = len(data.train_y)
    spec = {**BP_SPEC, "seeds": [0], "batch_size": n, "updates": 3, "eval_every": 3, "algo": "bp", "algorithm": "bp_sgd", "lr": 0.5}
    df, _ = train(spec)
    net = build_model(spec["model"], data.image_shape, data.n_classes, "post", 0, torch.float64, torch.device("cpu"))
    algo = make_algorithm("bp_sgd", net, spec["lr"])
    y = torch.nn.functional.one_hot(data.train_y, data.n_classes).to(torch.float64)
    for u in (1, 2, 3):
        row = df[df["update"] == u].iloc[0]
        with torch.no_grad():
            logits = net.logits(data.train_x)
            loss, acc = float(net.loss(logits, y)), float((logits.argmax(-1) == data.train_y).double().mean())
        algo.step(net, data.train_x, y)
        with torch.no_grad():
            after = float(net.loss(net.logits(data.train_x), y))
        assert row["train_loss"] == pytest.approx(loss, rel=1e-10) and row["train_acc"] == pytest.approx(acc, abs=1e-12)
        assert abs(after - loss) > 1e-4 * loss  # the post-update loss is another number


@pytest.mark.parametrize("model", [{"type": "mlp", "hidden": [32, 16]}, {"type": "autoencoder", "hidden": [32, 8, 32]}])
def test_evaluation_in_chunks_equals_one_pass(model):
    """The evaluation in chunks (1,000 images a pass on a CPU, and a last short one) gives the measures
    of one pass over the whole test set, to float rounding; a wrong weighting of the chunks fails it."""
    from ilrepro.bench import random_dataset
    from ilrepro.models import build_model
    from ilrepro.train import eval_chunk, evaluate

    assert eval_chunk(torch.device("cpu")) == 1000
    data = random_dataset("mnist", 10, 2500, (1, 28, 28), 10, "cpu", dtype=torch.float64)
    net = build_model(model, (1, 28, 28), 10, "post", 0, dtype=torch.float64)
    whole, chunked = evaluate(net, data, chunk=2500), evaluate(net, data)
    assert whole.keys() == chunked.keys()
    for k in whole:
        assert chunked[k] == pytest.approx(whole[k], rel=1e-12), k
    assert evaluate(net, data, chunk=700)["test_loss"] == pytest.approx(whole["test_loss"], rel=1e-12)
