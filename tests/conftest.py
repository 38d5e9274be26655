from __future__ import annotations

import torch
import pytest

from ilrepro.models import Net, build_model


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def small_mlp(param: str = "post", seed: int = 0, hidden=(7, 6), n_in=5, n_out=4, dtype=torch.float64, **cfg) -> Net:
    """A small MLP on a 1x1xn_in 'image'."""
    return build_model({"type": "mlp", "hidden": list(hidden), **cfg}, (1, 1, n_in), n_out, param, seed, dtype)


def batch(n: int = 3, n_in: int = 5, n_out: int = 4, seed: int = 1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 1, n_in, generator=g, dtype=dtype)
    y = torch.nn.functional.one_hot(torch.randint(0, n_out, (n,), generator=g), n_out).to(dtype)
    return x, y
