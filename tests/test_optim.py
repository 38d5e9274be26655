"""Our SGD and Adam are torch.optim's, bit for bit."""

from __future__ import annotations

import pytest
import torch

from ilrepro.optim import SGD, Adam


def _run(make, steps=25, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(7, 5, generator=g, dtype=dtype), torch.randn(5, generator=g, dtype=dtype)]
    opt = make(params)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
        opt.step()
    return params


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda ps: SGD(ps, 0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        (lambda ps: SGD(ps, 0.05, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
        (lambda ps: Adam(ps, 1e-3), lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False)),
        (lambda ps: Adam(ps, 0.3), lambda ps: torch.optim.Adam(ps, lr=0.3, foreach=False)),
    ],
    ids=["sgd", "sgd-momentum", "adam", "adam-large-step"],
)
def test_bit_identical_to_torch_optim(ours, theirs, dtype, monkeypatch):
    monkeypatch.setenv("ILREPRO_FUSED_ADAM", "0")  # our reference step against torch's single-tensor one
    a, b = _run(ours, dtype=dtype), _run(theirs, dtype=dtype)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], _run(ours, steps=0, dtype=dtype)[0])  # it moved


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lr", [1e-3, 0.3])
def test_fused_adam_runs_and_equals_the_reference_to_rounding(dtype, lr, monkeypatch):
    """The fast step (torch's fused kernel) gives the readable step's weights to float rounding."""
    calls = []
    fused = torch._fused_adam_
    monkeypatch.setattr(torch, "_fused_adam_", lambda *a, **k: calls.append(1) or fused(*a, **k))
    fast = _run(lambda ps: Adam(ps, lr), dtype=dtype)
    assert len(calls) == 25  # it ran, every step
    monkeypatch.setenv("ILREPRO_FUSED_ADAM", "0")
    ref = _run(lambda ps: Adam(ps, lr), dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert all(torch.allclose(x, y, rtol=tol, atol=tol) for x, y in zip(fast, ref))


@pytest.mark.parametrize(
    "make",
    [lambda ps, lr: SGD(ps, lr), lambda ps, lr: SGD(ps, lr, momentum=0.9), lambda ps, lr: Adam(ps, lr)],
    ids=["sgd", "sgd-momentum", "adam"],
)
def test_per_member_learning_rates_equal_each_member_alone(make, monkeypatch):
    monkeypatch.setenv("ILREPRO_FUSED_ADAM", "0")  # bit for bit: the reference step (alone, Adam would take torch's fused kernel)
    # members stacked along the leading dimension, each with its own rate (two share one): bit for bit
    # the member trained alone with its rate
    rates = [0.1, 0.1, 0.02, 3.0]
    g = torch.Generator().manual_seed(1)
    init = [torch.randn(4, 7, 5, generator=g), torch.randn(4, 5, generator=g)]
    grads = [[torch.randn(p.shape, generator=g) for p in init] for _ in range(10)]
    stacked = [p.clone() for p in init]
    opt = make(stacked, rates)
    for gs in grads:
        for p, gk in zip(stacked, gs):
            p.grad = gk
        opt.step()
    for k, lr in enumerate(rates):
        alone = [p[k].clone() for p in init]
        opt_k = make(alone, lr)
        for gs in grads:
            for p, gk in zip(alone, gs):
                p.grad = gk[k]
            opt_k.step()
        for x, y in zip(stacked, alone):
            assert torch.equal(x[k], y), k


def test_per_member_rates_need_a_stacked_dimension_of_their_number():
    with pytest.raises(ValueError, match="leading dimension"):
        SGD([torch.zeros(3, 2)], [0.1, 0.2])
