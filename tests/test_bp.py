"""BP's gradients equal torch.autograd on an independent torch.nn model, and the textbook delta rule."""

from __future__ import annotations

import torch
import pytest

from ilrepro.algorithms import bp_gradient
from ilrepro.models import build_model

from conftest import batch, small_mlp


def _nn_mlp(net) -> torch.nn.Sequential:
    layers = []
    for i, (w, b) in enumerate(zip(net.params[0::2], net.params[1::2])):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if i < net.n_layers - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(torch.nn.Flatten(), *layers)


def test_bp_mlp_matches_torch_nn():
    net = small_mlp("post")
    x, y = batch()
    ours = bp_gradient(net, x, y)
    ref = _nn_mlp(net)
    loss = torch.nn.functional.cross_entropy(ref(x), y.argmax(-1))
    loss.backward()
    theirs = [p.grad for m in ref if isinstance(m, torch.nn.Linear) for p in (m.weight, m.bias)]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_bp_mlp_matches_delta_rule():
    """Squared-error output, pre-activation net: the delta recursion of the Z-IL sheet."""
    net = small_mlp("pre", output_loss="mse")
    x, y = batch(n=1)
    g = bp_gradient(net, x, y)
    # y^L = s_in; y^{l} = W f(y^{l+1}) + b with f = identity on the input, relu above.
    acts = [x.flatten(1)]
    for l in range(net.n_layers):
        a = acts[-1] if l == 0 else torch.relu(acts[-1])
        acts.append(a @ net.params[2 * l].T + net.params[2 * l + 1])
    delta = y - acts[-1]
    for l in reversed(range(net.n_layers)):
        a = acts[l] if l == 0 else torch.relu(acts[l])
        torch.testing.assert_close(g[2 * l], -(delta.T @ a), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g[2 * l + 1], -delta.sum(0), rtol=1e-12, atol=1e-12)
        if l > 0:
            delta = (delta @ net.params[2 * l]) * (acts[l] > 0)


def test_bp_cnn_matches_torch_nn():
    cfg = {"type": "cnn", "channels": [3, 4], "kernels": [3, 3], "strides": [1, 2]}
    net = build_model(cfg, (2, 8, 8), 5, "post", seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 2, 8, 8, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 4, 2]), 5).to(torch.float64)
    ours = bp_gradient(net, x, y)
    c1 = torch.nn.Conv2d(2, 3, 3, dtype=torch.float64)
    c2 = torch.nn.Conv2d(3, 4, 3, stride=2, dtype=torch.float64)
    lin = torch.nn.Linear(4 * 2 * 2, 5, dtype=torch.float64)
    with torch.no_grad():
        for m, (w, b) in zip((c1, c2, lin), zip(net.params[0::2], net.params[1::2])):
            m.weight.copy_(w)
            m.bias.copy_(b)
    ref = torch.nn.Sequential(c1, torch.nn.ReLU(), c2, torch.nn.ReLU(), torch.nn.Flatten(), lin)
    torch.nn.functional.cross_entropy(ref(x), y.argmax(-1)).backward()
    theirs = [p.grad for m in (c1, c2, lin) for p in (m.weight, m.bias)]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("param", ["post", "pre"])
def test_parameterisations_share_initial_weights(param):
    a, b = small_mlp("post"), small_mlp(param)
    for p, q in zip(a.params, b.params):
        assert torch.equal(p, q)
