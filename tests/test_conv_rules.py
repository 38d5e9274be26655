"""The written-out vector-Jacobian products of a convolutional layer (Net.linear_vjp on a conv layer)
against autograd, and IL-SGD on a CNN: the written-out inference path against the autograd one."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_layer_vjps_match_autograd

from ilrepro import native
from ilrepro.algorithms import make_algorithm
from ilrepro.models import Net, build_model

SHAPES = [  # (kernels, strides, paddings) of a two-conv CNN on a 2x9x9 image
    ([3, 3], [1, 2], [0, 0]),
    ([2, 3], [2, 1], [1, 1]),
    ([3, 2], [1, 1], [2, 0]),
    ([1, 4], [3, 2], [0, 2]),
]


def _cnn(param: str, act: str, kernels, strides, paddings, dtype=torch.float64, seed: int = 0) -> Net:
    cfg = {"type": "cnn", "channels": [3, 4], "kernels": kernels, "strides": strides, "paddings": paddings, "activation": act}
    return build_model(cfg, (2, 9, 9), 5, param, seed, dtype)


def _x(n: int = 3, dtype=torch.float64, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 2, 9, 9, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("param", ["post", "pre"])
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_conv_written_out_vjps_equal_autograd(shape, param, act):
    net = _cnn(param, act, *shape)
    assert net.local_vjp and [s.kind for s in net.layers] == ["conv", "conv", "linear"]
    g = torch.Generator().manual_seed(5)
    h = [hh + 0.1 * torch.randn(hh.shape, generator=g, dtype=hh.dtype) for hh in net.forward(_x())[:-1]]
    assert_layer_vjps_match_autograd(net, h, g)


def _il_sgd(net: Net, dtype, updates: int = 20) -> list[torch.Tensor]:
    algo = make_algorithm("il_sgd", net, 0.05)
    g = torch.Generator().manual_seed(2)
    for _ in range(updates):
        x = torch.rand(4, 2, 9, 9, generator=g, dtype=dtype)
        y = torch.nn.functional.one_hot(torch.randint(0, 5, (4,), generator=g), 5).to(dtype)
        algo.step(net, x, y)
    return [p.clone() for p in net.params]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_il_sgd_on_a_cnn_same_weights_written_out_and_autograd(monkeypatch, dtype, tol, act):
    """20 IL-SGD updates on a CNN: the written-out conv rules give the weights the autograd path gives."""
    shape = SHAPES[1]
    fast = _il_sgd(_cnn("post", act, *shape, dtype=dtype), dtype)
    monkeypatch.setattr(Net, "local_vjp", property(lambda self: False))
    net = _cnn("post", act, *shape, dtype=dtype)
    assert not net.local_vjp  # the second run takes the autograd path
    slow = _il_sgd(net, dtype)
    start = _cnn("post", act, *shape, dtype=dtype).params
    for a, b, p0 in zip(fast, slow, start, strict=True):
        assert not torch.equal(a, p0)  # the weights moved
        assert float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


def test_native_path_still_declines_a_cnn():
    net = _cnn("post", "relu", *SHAPES[0], dtype=torch.float32)
    assert net.local_vjp
    assert "not a chain of linear layers" in native.net_unfit(net)


@pytest.mark.parametrize("act", ["relu", "sigmoid"])
def test_zil_front_on_a_cnn_written_out_where_it_pays_and_equal_to_autograd(monkeypatch, act):
    """Z-IL's front takes the written-out conv products on small activities, autograd's on large ones
    (Net.front_pays), and both give the same weight terms."""
    from ilrepro import models
    from ilrepro.algorithms.il import hard_clamp
    from ilrepro.energy import infer_front

    net = _cnn("pre", act, *SHAPES[1])
    x = _x(n=4)
    y = torch.nn.functional.one_hot(torch.arange(4) % 5, 5).to(x.dtype)
    assert net.front_pays(x)
    fast = infer_front(net, x, hard_clamp(y))
    # layer 1 reads 4 x 3 x 5 x 5 = 300 activities (9x9 input, kernel 2, stride 2, padding 1)
    monkeypatch.setattr(models, "FRONT_CONV_MAX", 300)
    assert not net.front_pays(x) and net.front_pays(x[:3])
    slow = infer_front(net, x, hard_clamp(y))
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
