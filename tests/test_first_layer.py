"""The evaluation's first layer kept up to date (ilrepro.first_layer): the same measures as the full
evaluation, a fallback (one log line) where an update is not in the span of the batches' inputs, where
``auto`` uses it, and the plan's account of it."""

from __future__ import annotations

import logging

import pytest
import torch

from ilrepro import first_layer
from ilrepro.first_layer import in_span
from ilrepro.train import train

MEASURES = ("test_acc", "test_loss", "test_ce")


def _spec(algorithm: str, lr: float, dtype: str = "float64", **kw) -> dict:
    # 20 evaluations and more: REFRESH (a full product every 20th) is crossed
    return {"dataset": "digits", "model": {"type": "mlp", "hidden": [32, 16]}, "batch_size": 1, "updates": 260,
            "eval_every": 10, "algorithm": algorithm, "lrs": [lr], "seeds": [0, 1], "dtype": dtype, **kw}


def _pair(spec: dict) -> tuple:
    full, meta_full = train({**spec, "keep_first_layer": False}, progress=False)
    kept, meta_kept = train({**spec, "keep_first_layer": True}, progress=False)
    return full, kept, meta_full, meta_kept


def test_in_span_accepts_a_combination_of_the_rows_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    rows = torch.rand(5, 40, generator=g, dtype=torch.float64)
    w = torch.randn(30, 40, generator=g, dtype=torch.float64)
    d = torch.randn(30, 5, generator=g, dtype=torch.float64) @ rows * 1e-2
    q, p, ok = in_span(d, rows, w)
    assert ok and torch.allclose(p @ q.t(), d, atol=1e-15)
    assert in_span(d, torch.cat([rows, rows[:1]]), w)[2]  # a repeated row (rank-deficient): still a basis
    noise = torch.randn(30, 40, generator=g, dtype=torch.float64) * 1e-6 * float(w.norm()) / 40
    assert not in_span(d + noise, rows, w)[2]  # a part outside the span, far above rounding
    assert not in_span(d, rows[:4], w)[2]  # a row missing


@pytest.mark.parametrize("algorithm,lr,hp", [("bp_sgd", 0.05, {}), ("il_sgd", 0.05, {}), ("il_prox", 2.5, {"eps": 0.25}),
                                             ("bp_prox", 0.01, {"eps": 0.0}), ("zil", 0.05, {})])
def test_kept_first_layer_gives_the_full_evaluation(algorithm, lr, hp):
    """float64: every measure of every evaluation equal to 1e-12, the kept product used."""
    full, kept, _, meta = _pair(_spec(algorithm, lr, hparams=hp))
    assert meta["first_layer_kept"] > 0 and meta["first_layer_full"] >= 4  # 2 members x 27 evaluations, REFRESH 20
    assert list(full["update"]) == list(kept["update"])
    for c in MEASURES:
        assert torch.allclose(torch.tensor(kept[c].to_numpy()), torch.tensor(full[c].to_numpy()), rtol=1e-12, atol=0), c


def test_kept_first_layer_float32_on_real_images_and_stacked_members():
    """float32 on digits (correlated, rank-deficient rows), members stacked (vmap): to float tolerance."""
    full, kept, _, meta = _pair(_spec("il_sgd", 0.05, dtype="float32", stack=True, lrs=[0.05, 0.1], seeds=[0, 1, 2, 3]))
    assert meta["vectorised"] and meta["first_layer_kept"] > 0
    for c in MEASURES:
        assert torch.allclose(torch.tensor(kept[c].to_numpy()), torch.tensor(full[c].to_numpy()), rtol=1e-5, atol=0), c


def test_an_update_outside_the_span_falls_back_to_the_full_evaluation_with_one_log_line(caplog, monkeypatch):
    """Adam's update is not in the span of the inputs: not tried at all, and were it tried (here: by
    bypassing the up-front rule), the residual check finds it, says so once per
    job, and the member is evaluated in full from then on: the measures are exactly the full evaluation's
    (the first, taken before any update from the full product and its bias added after, to float rounding:
    torch's addmm may round the bias in otherwise, as MKL's generic kernels do)."""
    from ilrepro.models import build_model
    from ilrepro.train import keeps_first_layer

    net = build_model({"type": "mlp", "hidden": [32]}, (1, 8, 8), 10, "post", 0)
    assert not keeps_first_layer({**_spec("bp_adam", 1e-3), "keep_first_layer": True}, net, 359)
    assert not keeps_first_layer({**_spec("bp_sgd", 1e-3, hparams={"momentum": 0.9}), "keep_first_layer": True}, net, 359)
    import ilrepro.train

    monkeypatch.setattr(ilrepro.train, "keeps_first_layer", lambda spec, net, n_test, batched=False: spec.get("keep_first_layer") is True)
    first_layer._said.clear()
    with caplog.at_level(logging.WARNING, logger="ilrepro.first_layer"):
        full, kept, _, meta = _pair(_spec("bp_adam", 1e-3, experiment="t", algo="adam"))
    lines = [r for r in caplog.records if r.name == "ilrepro.first_layer"]
    assert len(lines) == 1 and "not in the span" in lines[0].getMessage() and "t/adam" in lines[0].getMessage()
    assert meta["first_layer_kept"] == 0 and meta["first_layer_full"] > 0
    for c in MEASURES:
        assert kept[c].iloc[0] == pytest.approx(full[c].iloc[0], rel=1e-12, abs=0), c
        assert kept[c].iloc[1:].tolist() == full[c].iloc[1:].tolist(), c


def test_a_diverging_run_is_still_recorded():
    full, kept, meta_full, meta = _pair(_spec("bp_prox", 0.1, hparams={"eps": 0.0}))  # one member NaN within the run
    assert meta["status"] == meta_full["status"] == "diverged" and meta["first_layer_kept"] > 0
    assert list(kept["update"]) == list(full["update"]) and kept["status"].eq("diverged").any()


def test_auto_keeps_it_only_where_it_pays():
    from ilrepro.models import build_model
    from ilrepro.train import keeps_first_layer

    def keeps(hidden, shape, batch, algorithm="bp_sgd", **kw):
        net = build_model({"type": "mlp", "hidden": hidden}, shape, 10, "post", 0)
        return keeps_first_layer({"algorithm": algorithm, "eval_every": 50, "batch_size": batch, **kw}, net, 10_000)

    assert keeps([1024, 1024, 1024], (3, 32, 32), 1)  # E1 on CIFAR-10
    assert not keeps([256, 256], (1, 28, 28), 1)  # E2 on MNIST: ~20 % of an evaluation saved, not half
    assert keeps([256, 256], (1, 28, 28), 1, keep_first_layer=True)
    assert not keeps([256, 256], (1, 28, 28), 64)  # 3,200 rows between evaluations: no saving
    assert not keeps([64, 64], (1, 8, 8), 1)  # digits: the default pipeline evaluates as before
    assert not keeps([1024], (3, 32, 32), 1, keep_first_layer=False)
    assert not keeps([1024], (3, 32, 32), 1, algorithm="eqprop")  # its prediction is a free equilibrium
    assert keeps([64, 64], (1, 8, 8), 1, keep_first_layer=True)


def test_the_plan_counts_it_where_an_update_is_in_the_span():
    from ilrepro.costs import estimate_seconds, train_resources

    def spec(algorithm, **kw):
        return {"dataset": "cifar10", "model": {"type": "mlp", "hidden": [1024, 1024, 1024]}, "batch_size": 1, "updates": 5000,
                "eval_every": 50, "algorithm": algorithm, "lrs": [0.01, 0.1], "seeds": [0, 1, 2, 3, 4], "device": "cpu", **kw}

    for algorithm in ("bp_sgd", "il_sgd", "bp_prox"):
        auto, off = estimate_seconds(spec(algorithm)), estimate_seconds(spec(algorithm, keep_first_layer=False))
        assert auto < 0.8 * off, algorithm
        assert train_resources(spec(algorithm)).mem_mb > train_resources(spec(algorithm, keep_first_layer=False)).mem_mb
    # Adam's update is not in the span (measured at planning as at training): no saving counted
    assert estimate_seconds(spec("bp_adam")) == estimate_seconds(spec("bp_adam", keep_first_layer=False))
