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
        (lambda ps: Adam(ps, 1e-3), lambda ps: torch.optim.Adam(ps, lr=1e-3)),
        (lambda ps: Adam(ps, 0.3), lambda ps: torch.optim.Adam(ps, lr=0.3, foreach=False)),
    ],
    ids=["sgd", "sgd-momentum", "adam", "adam-large-step"],
)
def test_bit_identical_to_torch_optim(ours, theirs, dtype):
    a, b = _run(ours, dtype=dtype), _run(theirs, dtype=dtype)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], _run(ours, steps=0, dtype=dtype)[0])  # it moved
