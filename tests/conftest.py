from __future__ import annotations

import copy

import pytest
import torch
import yaml

from ilrepro.models import Net, build_model

_SMALL_CONFIG = yaml.safe_load(
    """
experiments:
  e:
    dataset: digits
    model: {type: mlp, hidden: [8]}
    batch_size: 1
    updates: 100
    eval_every: 50
    seeds: [0, 1]
    algorithms:
      bp: {algorithm: bp_sgd, lr: [0.1, 0.01]}
      il: {algorithm: il_sgd, lr: [0.05], hparams: {T: 5}}
figures:
  f: {notebook: training_curves, experiments: [e]}
"""
)


def small_config() -> dict:
    """A fresh copy of a valid two-entry digits config (one experiment, one figure)."""
    return copy.deepcopy(_SMALL_CONFIG)


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


def assert_layer_vjps_match_autograd(net: Net, h: list[torch.Tensor], g: torch.Generator) -> None:
    """Every layer's written-out products (``Net.linear_vjp``: J^T e to its input, and its weight and
    bias terms) equal autograd's on the layer function, at activities ``h``, for a random cotangent e."""
    for l in range(net.n_layers):
        hl = h[l].clone().requires_grad_(True)
        ps = [p.clone().requires_grad_(True) for p in net.params]
        mu = net.layer(l, hl, ps)
        e = torch.randn(mu.shape, generator=g, dtype=mu.dtype)
        dh, dw, db = torch.autograd.grad(mu, [hl, ps[2 * l], ps[2 * l + 1]], grad_outputs=e)
        mu = mu.detach()
        torch.testing.assert_close(net.linear_vjp(l, h[l], mu, e, "input")[0], dh, rtol=1e-12, atol=1e-12)
        ours_w, ours_b = net.linear_vjp(l, h[l], mu, e, "params")
        torch.testing.assert_close(ours_w, dw, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours_b, db, rtol=1e-12, atol=1e-12)
