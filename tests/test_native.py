"""The native fast path (ilrepro.native) gives the reference's weights, and falls back to the reference,
saying so in one log line, where it cannot run."""

from __future__ import annotations

import logging

import pytest
import torch

from ilrepro import native
from ilrepro.algorithms import ALGORITHMS, make_algorithm
from ilrepro.models import build_model

# every algorithm that has the fast path, with a step size that moves the weights visibly in 50 updates
FAST = {"bp_sgd": 0.05, "bp_adam": 1e-3, "il_sgd": 0.05, "il_adam": 1e-3, "il_prox": 0.5, "il_prox_fast": 0.5,
        "il_prox_adam": 0.5, "pc_nudge": 0.05, "bp_prox": 0.5}
HP = {"il_sgd": {"T": 8}, "il_adam": {"T": 8}, "il_prox": {"T": 8}, "il_prox_adam": {"T": 8},
      "pc_nudge": {"T": 8, "form": "direct"}, "bp_prox": {"eps": 1.0}}  # the fast path runs the direct form only; BP-prox at eps 0 and these rates grows its weights 2000x (chaotic)
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
N_IN, N_OUT = 12, 5


def _train(name: str, act: str, bsz: int, dtype: torch.dtype, on: bool, monkeypatch, model: str = "mlp", updates: int = 50,
           keep_gradient: bool = True, returned: list | None = None) -> list[torch.Tensor]:
    monkeypatch.setenv("ILREPRO_NATIVE", "1" if on else "0")
    cfg = {"type": model, "hidden": [20, 16], "activation": act}
    n_out = N_IN if model == "autoencoder" else N_OUT
    net = build_model(cfg, (1, 1, N_IN), n_out, ALGORITHMS[name].parameterisation, 0, dtype)
    algo = make_algorithm(name, net, FAST[name], HP.get(name))
    gen = torch.Generator().manual_seed(1)
    for _ in range(updates):
        x = torch.rand(bsz, 1, 1, N_IN, generator=gen, dtype=dtype)
        y = x.flatten(1) if model == "autoencoder" else torch.nn.functional.one_hot(torch.randint(0, N_OUT, (bsz,), generator=gen), N_OUT).to(dtype)
        out = algo.step(net, x, y, keep_gradient)
        if returned is not None:
            returned.append(out)
    return [p.clone() for p in net.params]


def _rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((p - q).abs().max() / q.abs().max()) for p, q in zip(a, b, strict=True))


@pytest.fixture
def built():
    if not native.available():
        pytest.fail("the native extension did not build here (see the log line above); CI must build it")


CASES = [(name, act, bsz, dtype) for name in FAST for act in ("relu", "tanh" if ALGORITHMS[name].parameterisation == "pre" else "sigmoid")
         for bsz in (1, 64) for dtype in (torch.float64, torch.float32)]


@pytest.mark.parametrize("name,act,bsz,dtype", CASES, ids=[f"{n}-{a}-B{b}-{str(d)[6:]}" for n, a, b, d in CASES])
def test_fast_path_gives_the_references_weights_after_50_updates(name, act, bsz, dtype, monkeypatch, built):
    ref = _train(name, act, bsz, dtype, False, monkeypatch)
    before = dict(native.calls)
    fast = _train(name, act, bsz, dtype, True, monkeypatch)
    assert sum(native.calls.values()) - sum(before.values()) == 50  # the fast path ran, once per update
    start = _train(name, act, bsz, dtype, False, monkeypatch, updates=0)
    assert _rel(ref, start) > 1e-3  # the weights moved: the comparison is not vacuous
    assert _rel(fast, ref) <= TOL[dtype]


KEEP_CASES = [(name, bsz) for name in FAST for bsz in (1, 64)]


@pytest.mark.parametrize("name,bsz", KEEP_CASES, ids=[f"{n}-B{b}" for n, b in KEEP_CASES])
def test_a_step_whose_gradient_is_not_kept_gives_the_same_weights(name, bsz, monkeypatch, built):
    """``keep_gradient=False`` (a training that does not read the gradient): the same weights to the
    last bit, and where the native step is fused with plain SGD nothing is returned."""
    kept, dropped = [], []
    ref = _train(name, "relu", bsz, torch.float32, True, monkeypatch, keep_gradient=True, returned=kept)
    fast = _train(name, "relu", bsz, torch.float32, True, monkeypatch, keep_gradient=False, returned=dropped)
    start = _train(name, "relu", bsz, torch.float32, True, monkeypatch, updates=0)
    assert _rel(ref, start) > 1e-3
    assert all(torch.equal(p, q) for p, q in zip(fast, ref, strict=True))
    assert all(len(g) == 2 * 3 for g in kept)  # a weight and a bias direction for each of the 3 layers
    fused = "adam" not in name
    assert all(g == [] for g in dropped) if fused else all(len(g) == 2 * 3 for g in dropped)


def test_not_keeping_needs_a_step():
    net = build_model({"type": "mlp", "hidden": [4]}, (1, 1, N_IN), N_OUT, "post", 0)
    x, y = torch.rand(1, 1, 1, N_IN), torch.eye(N_OUT)[:1]
    with pytest.raises(ValueError, match="keep=False without a step"):
        native.bp_gradient(net, x, y, keep=False)
    with pytest.raises(ValueError, match="keep=False without a step"):
        native.il_directions(net, x, y, ("hard", 0.0, 0.0), 3, 0.1, 0.1, keep=False)


@pytest.mark.parametrize("name", ["bp_sgd", "il_sgd"])
def test_fast_path_on_the_autoencoder(name, monkeypatch, built):
    ref = _train(name, "relu", 16, torch.float64, False, monkeypatch, model="autoencoder")
    fast = _train(name, "relu", 16, torch.float64, True, monkeypatch, model="autoencoder")
    assert _rel(fast, ref) <= 1e-12


def test_gradient_alone_equals_the_reference(monkeypatch, built):
    """``gradient`` (the analyses' entry, no optimiser step) takes the fast path too."""
    for name in ("bp_sgd", "il_sgd", "il_prox", "pc_nudge"):
        net = build_model({"type": "mlp", "hidden": [9, 8]}, (1, 1, N_IN), N_OUT, ALGORITHMS[name].parameterisation, 0, torch.float64)
        algo = make_algorithm(name, net, 0.3, HP.get(name))
        x = torch.rand(7, 1, 1, N_IN, dtype=torch.float64)
        y = torch.nn.functional.one_hot(torch.arange(7) % N_OUT, N_OUT).double()
        monkeypatch.setenv("ILREPRO_NATIVE", "0")
        ref = algo.gradient(net, x, y)
        monkeypatch.setenv("ILREPRO_NATIVE", "1")
        n0 = sum(native.calls.values())
        fast = algo.gradient(net, x, y)
        assert sum(native.calls.values()) == n0 + 1
        assert _rel(fast, ref) <= 1e-12, name


def test_switched_off_runs_the_reference_and_says_so_once(monkeypatch, caplog):
    native.reset()
    monkeypatch.setenv("ILREPRO_NATIVE", "0")
    n0 = sum(native.calls.values())
    with caplog.at_level(logging.INFO, logger="ilrepro.native"):
        _train("il_sgd", "relu", 4, torch.float64, False, monkeypatch, updates=5)
    assert sum(native.calls.values()) == n0
    lines = [r.getMessage() for r in caplog.records if r.name == "ilrepro.native"]
    assert len(lines) == 1 and "ILREPRO_NATIVE=0" in lines[0] and "reference runs" in lines[0]


def test_a_failed_build_falls_back_with_one_log_line(monkeypatch, caplog):
    def broken():
        raise RuntimeError("Error building extension 'ilrepro_chain': c++: command not found")

    native.reset()
    monkeypatch.setattr(native, "_build", broken)
    monkeypatch.setenv("ILREPRO_NATIVE", "1")
    try:
        with caplog.at_level(logging.INFO, logger="ilrepro.native"):
            ref = _train("il_sgd", "relu", 4, torch.float64, True, monkeypatch, updates=5)
        lines = [r.getMessage() for r in caplog.records if r.name == "ilrepro.native"]
        assert len(lines) == 1 and "could not be built" in lines[0] and "command not found" in lines[0]
        monkeypatch.undo()
        assert _rel(ref, _train("il_sgd", "relu", 4, torch.float64, False, monkeypatch, updates=5)) == 0.0  # it was the reference
    finally:
        native.reset()  # the next use builds (loads from the cache) again


def test_unsupported_model_runs_the_reference_and_says_so(monkeypatch, caplog):
    native.reset()
    monkeypatch.setenv("ILREPRO_NATIVE", "1")
    net = build_model({"type": "cnn", "channels": [2], "kernels": [3]}, (1, 6, 6), 3, "post", 0, torch.float64)
    algo = make_algorithm("il_sgd", net, 0.1, {"T": 2})
    n0 = sum(native.calls.values())
    with caplog.at_level(logging.INFO, logger="ilrepro.native"):
        for _ in range(3):
            algo.step(net, torch.rand(2, 1, 6, 6, dtype=torch.float64), torch.eye(3, dtype=torch.float64)[:2])
    assert sum(native.calls.values()) == n0
    lines = [r.getMessage() for r in caplog.records if r.name == "ilrepro.native"]
    assert len(lines) == 1 and "not a chain of linear layers" in lines[0]


def test_not_under_vmap(monkeypatch, built):
    """Stacked seeds (torch.func.vmap) take the reference: tests/test_ensemble.py checks they still
    equal one-by-one training (which takes the fast path)."""
    from ilrepro.ensemble import Ensemble

    monkeypatch.setenv("ILREPRO_NATIVE", "1")
    nets = [build_model({"type": "mlp", "hidden": [6]}, (1, 1, N_IN), N_OUT, "post", s, torch.float64) for s in (0, 1)]
    ens = Ensemble(nets, "il_sgd", 0.1, {"T": 3}, vectorise=True)
    n0 = sum(native.calls.values())
    x = [torch.rand(3, 1, 1, N_IN, dtype=torch.float64) for _ in nets]
    y = [torch.eye(N_OUT, dtype=torch.float64)[:3] for _ in nets]
    ens.step(x, y, [0, 1])
    assert sum(native.calls.values()) == n0


def test_the_build_is_keyed_by_source_flags_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("ILREPRO_CACHE", str(tmp_path))
    assert native.cache_dir() == tmp_path / "torch_extensions"
    name = native._name()
    monkeypatch.setattr(native, "CFLAGS", [*native.CFLAGS, "-DX"])
    assert native._name() != name
    monkeypatch.setattr(native, "_cpu", lambda: "another cpu")
    assert len({name, native._name()}) == 2
