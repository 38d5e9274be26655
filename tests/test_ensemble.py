"""A job's members -- every learning rate x seed of an algorithm entry -- trained together (stacked
weights, one vmapped step, per-member step sizes) give each member's result as trained alone."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ilrepro.algorithms import ALGORITHMS
from ilrepro.train import train

MLP = {"type": "mlp", "hidden": [12, 10]}
CNN = {"type": "cnn", "channels": [3], "kernels": [3], "strides": [2]}
RNN = {"type": "rnn", "hidden": [8]}
BASE = dict(experiment="t", algo="a", dataset="digits", batch_size=2, updates=12, eval_every=4, lr=0.05)

# (algorithm, model, hyper-parameters): every algorithm that says it is vectorisable, on the MLP, and the
# autograd paths of the inference loop (CNN, RNN) with IL and BP
CASES = [(name, MLP, {}) for name, cls in sorted(ALGORITHMS.items()) if cls.vectorisable and name != "pc_nudge"] + [
    # PC-Nudge's 1/lambda amplifies float32 rounding (see Paper C's finding): float64 for it
    ("pc_nudge", MLP, {"dtype": "float64"}),
    ("il_sgd", CNN, {"T": 4}),
    ("bp_sgd", CNN, {}),
    ("il_sgd", RNN, {"T": 4}),
    ("bp_adam", RNN, {}),
]
LRS = {"il_prox": 2.0, "il_prox_fast": 2.0, "il_prox_adam": 2.0, "bp_prox": 2.0, "bp_adam": 1e-3, "il_adam": 1e-3}


def _spec(name, model, hp, **kw):
    hp = dict(hp)
    dtype = hp.pop("dtype", "float32")
    return {**BASE, "algorithm": name, "model": model, "hparams": hp, "dtype": dtype, "lr": LRS.get(name, 0.05), "track_path_length": True, **kw}


@pytest.mark.parametrize("name,model,hp", CASES, ids=[f"{c[0]}-{c[1]['type']}" for c in CASES])
def test_vectorised_seeds_equal_one_by_one(name, model, hp):
    together, meta = train(_spec(name, model, hp, seeds=[0, 1, 2], vectorise=True))
    assert meta["vectorised"] and meta["members"] == 3
    alone = pd.concat([train(_spec(name, model, hp, seed=s))[0] for s in (0, 1, 2)], ignore_index=True)
    assert together.columns.tolist() == alone.columns.tolist()
    assert together[["seed", "update", "status"]].equals(alone[["seed", "update", "status"]])
    for col in ("test_loss", "delta_norm", "path_length"):
        # float32 throughout: bit-identical in practice; the tolerance allows a batched kernel to round
        # differently in the last place
        np.testing.assert_allclose(together[col], alone[col], rtol=1e-5, atol=1e-7, err_msg=col)
    assert (together["test_acc"] - alone["test_acc"]).abs().max() <= 1 / 1797 + 1e-12  # at most one test image
    # the seeds really differ (each member has its own weights and batches)
    finals = together.groupby("seed")["test_loss"].last()
    assert finals.nunique() == 3


def test_one_seed_diverging_leaves_the_others_untouched():
    # squared-error output at a huge step: BP-SGD's weights blow up, seed by seed at different times
    model = {"type": "mlp", "hidden": [16], "output_loss": "mse"}
    spec = {**BASE, "algorithm": "bp_sgd", "model": model, "batch_size": 1, "updates": 60, "eval_every": 5, "hparams": {}}
    fine = train({**spec, "seeds": [0, 1], "lr": 0.05, "vectorise": True})[0]
    mixed_spec = {**spec, "seeds": [0, 1], "lr": 0.05, "vectorise": True}
    # member 1 diverges: give it its own huge step by training the pair at a huge lr next to one alone
    bad, meta = train({**mixed_spec, "lr": 1e4})
    assert meta["status"] == "diverged" and {r["status"] for r in meta["runs"]} == {"diverged"}
    for s in (0, 1):
        alone = train({**spec, "seed": s, "lr": 1e4})[0]
        got = bad[bad["seed"] == s].reset_index(drop=True)
        assert got["update"].tolist() == alone["update"].tolist()  # stops where the seed alone stops
        assert got["status"].iloc[-1] == "diverged"
    assert (fine["status"] == "ok").all()


def test_non_vectorisable_algorithm_trains_its_seeds_one_after_another():
    assert not ALGORITHMS["zil"].vectorisable
    spec = {**BASE, "algorithm": "zil", "model": MLP, "hparams": {}, "lr": 0.05}
    together, meta = train({**spec, "seeds": [0, 1]})
    assert not meta["vectorised"] and meta["members"] == 2
    alone = pd.concat([train({**spec, "seed": s})[0] for s in (0, 1)], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)


def test_vectorise_false_gives_the_same_table():
    spec = _spec("il_sgd", MLP, {"T": 5}, seeds=[3, 4], vectorise=True)
    a, ma = train(spec)
    b, mb = train({**spec, "vectorise": False})
    assert ma["vectorised"] and not mb["vectorised"]
    np.testing.assert_allclose(a["test_loss"], b["test_loss"], rtol=1e-5)
    assert math.isclose(ma["updates_done"], 2 * 12) and mb["updates_done"] == 24


def test_auto_stacks_by_the_measured_rule(monkeypatch):
    import torch

    from ilrepro import native

    from ilrepro.train import STACK_MAX_WORK, STACK_MIN_MEMBERS, stack_members

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not stack_members("auto", STACK_MIN_MEMBERS - 1, 1, 10_000, cpu)
    assert stack_members("auto", STACK_MIN_MEMBERS, 1, 10_000, cpu)
    assert not stack_members("auto", 30, 1, STACK_MAX_WORK + 1, cpu)  # bound by arithmetic/memory: no gain
    assert stack_members("auto", 2, 64, 10**7, cuda)  # on CUDA: always
    assert stack_members(True, 2, 64, 10**7, cpu) and not stack_members(False, 30, 1, 10, cuda)
    # where the native fast path trains each member alone, it beats stacking on a CPU at every size measured
    assert not stack_members("auto", 30, 1, 10_000, cpu, native_alone=True) and stack_members("auto", 2, 1, 10, cuda, native_alone=True)
    spec = _spec("bp_sgd", MLP, {}, updates=2, eval_every=2)
    six = {**spec, "seeds": [0, 1, 2], "lrs": [0.01, 0.1], "lr": None}
    assert not train({**spec, "seeds": [0, 1, 2]})[1]["vectorised"]
    if native.available():
        meta = train(six)[1]
        assert not meta["vectorised"] and meta["update_path"] == "native"
    monkeypatch.setenv("ILREPRO_NATIVE", "0")  # the reference path one by one: 6 members are stacked
    meta = train(six)[1]
    assert meta["vectorised"] and meta["update_path"] == "reference"
    with pytest.raises(ValueError, match="vectorise"):
        train({**spec, "seeds": [0, 1], "vectorise": "yes"})


# (algorithm, learning rates, model): SGD, momentum, Adam, the IL-prox family (alpha inside the gradient)
# and the BP-prox control; the last rate of the SGD sweeps makes its members diverge
MSE = {"type": "mlp", "hidden": [12, 10], "output_loss": "mse"}
SWEEPS = [
    ("bp_sgd", [0.01, 0.2, 1e4], MSE, {}),
    ("bp_sgd", [0.01, 0.2], MLP, {"momentum": 0.9}),
    ("il_sgd", [0.01, 0.2, 1e4], MSE, {"T": 5}),
    ("bp_adam", [1e-3, 1e-2], MLP, {}),
    ("il_prox", [0.1, 2.0, 50.0], MLP, {"T": 5, "eps": 0.25}),
    # a model alone takes torch's fused Adam kernel, stacked members the reference step: Adam's
    # m / sqrt(v) amplifies their last-place difference where v is tiny (1e-4 of path length in float32)
    ("il_prox_adam", [0.1, 2.0], MLP, {"T": 5, "dtype": "float64"}),
    # BP-prox divides by mean_b ||a_l||^2 + eps, about 0 for a ReLU layer at B=1 and eps=0: it amplifies a
    # batched kernel's last-place rounding (5e-5 after 40 updates in float32), hence float64 for it
    ("bp_prox", [0.001, 0.02, 0.5], MLP, {"dtype": "float64"}),
]


@pytest.mark.parametrize("name,lrs,model,hp", SWEEPS, ids=[f"{c[0]}-{len(c[1])}lr{'-mom' if c[3].get('momentum') else ''}" for c in SWEEPS])
def test_stacked_sweep_equals_each_member_alone(name, lrs, model, hp):
    hp = dict(hp)
    spec = {**BASE, "algorithm": name, "model": model, "dtype": hp.pop("dtype", "float32"), "hparams": hp, "batch_size": 1,
            "updates": 40, "eval_every": 5, "track_path_length": True}
    spec.pop("lr")
    together, meta = train({**spec, "lrs": lrs, "seeds": [0, 1], "stack": True})
    assert meta["vectorised"] and meta["members"] == 2 * len(lrs)
    alone = pd.concat([train({**spec, "lr": lr, "seed": s})[0] for lr in lrs for s in (0, 1)], ignore_index=True)
    assert together.columns.tolist() == alone.columns.tolist()
    assert together[["lr", "seed", "update", "status"]].equals(alone[["lr", "seed", "update", "status"]])
    for col in ("test_loss", "delta_norm", "path_length"):
        np.testing.assert_allclose(together[col], alone[col], rtol=1e-5, atol=1e-7, err_msg=col)
    ok = together[together["status"] == "ok"]
    finals = ok.groupby(["lr", "seed"])["test_loss"].last()
    assert len(finals) >= 4 and finals.nunique() == len(finals)  # every member its own rate and seed
    if lrs[-1] >= 1e3:  # the huge rate's members diverged, where they would alone; the others did not
        status = {(r["lr"], r["status"]) for r in meta["runs"]}
        assert status == {(lr, "ok") for lr in lrs[:-1]} | {(lrs[-1], "diverged")}, status
        assert together[together["lr"] == lrs[-1]]["update"].max() < spec["updates"]


def test_a_job_writes_one_run_per_learning_rate(tmp_path):
    import json

    from ilrepro.train import run_and_save

    spec = {**_spec("il_prox", MLP, {"T": 3}), "lrs": [0.5, 4.0], "seeds": [0, 1], "updates": 4, "eval_every": 2}
    spec.pop("lr")
    metrics = [tmp_path / f"lr{x:g}" / "metrics.parquet" for x in spec["lrs"]]
    metas = [tmp_path / f"lr{x:g}" / "meta.json" for x in spec["lrs"]]
    run_and_save(spec, metrics, metas)
    for lr, m, j in zip(spec["lrs"], metrics, metas):
        df, meta = pd.read_parquet(m), json.loads(j.read_text())
        assert set(df["lr"]) == {lr} and sorted(set(df["seed"])) == [0, 1]
        assert meta["spec"]["lr"] == lr and "lrs" not in meta["spec"] and [r["lr"] for r in meta["runs"]] == [lr, lr]
        assert meta["job"] == {"lrs": [0.5, 4.0], "members": 4, "updates_done": 16} and meta["updates_done"] == 8
    with pytest.raises(ValueError, match="2 learning rate"):
        run_and_save(spec, metrics[:1], metas[:1])


def test_seeds_must_be_distinct():
    with pytest.raises(ValueError, match="distinct"):
        train(_spec("bp_sgd", MLP, {}, seeds=[1, 1]))


def test_autodiff_gives_the_same_products_in_and_out_of_vmap():
    import torch

    from ilrepro import autodiff

    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    c = torch.randn(3, 4, generator=g, dtype=torch.float64)

    def one(wk, xk, ck):
        out, (dw, dx) = autodiff.vjp(lambda a, b: [torch.tanh(a @ b)], [wk, xk], lambda _: [ck])
        gw = autodiff.grad(lambda ps: (torch.tanh(ps[0] @ xk) ** 2).sum(), [wk])[0]
        return out[0], dw, dx, gw

    with autodiff.vectorised():
        batched = torch.func.vmap(one)(w, x, c)
    assert not autodiff.in_vmap()
    for k in range(3):
        for got, want in zip((b[k] for b in batched), one(w[k], x[k], c[k])):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("model", [MLP, {"type": "autoencoder", "hidden": [16, 8, 16]}], ids=["mlp", "autoencoder"])
def test_batched_evaluation_equals_member_by_member(model):
    # the CUDA path's evaluation (every member in one vmapped pass), forced on a CPU
    spec = {**_spec("il_sgd", model, {"T": 3}), "lrs": [0.01, 0.1], "seeds": [0, 1], "stack": True, "updates": 8, "eval_every": 4}
    spec.pop("lr")
    batched, mb = train({**spec, "batched_eval": True})
    single, ms = train({**spec, "batched_eval": False})
    assert mb["batched_eval"] and not ms["batched_eval"]
    for col in [c for c in ("test_acc", "test_loss", "test_ce") if c in single]:
        np.testing.assert_allclose(batched[col], single[col], rtol=1e-5, atol=1e-7, err_msg=col)
