"""Z-IL and Fa-Z-IL reproduce BP exactly (Salvatori et al. 2021), and each removed condition breaks it."""

from __future__ import annotations

import pytest
import torch

from ilrepro.algorithms import make_algorithm
from ilrepro.algorithms import bp_gradient
from ilrepro.algorithms.zil import PlasticityGate, fa_zil_directions, update_steps, zil_directions, zil_front_directions
from ilrepro.analyses import analysis_params
from ilrepro.analyses.zil import zil_divergence
from ilrepro.energy import graph_distances
from ilrepro.models import Net, build_model

SMALL = {
    "mlp": {"type": "mlp", "hidden": [16, 12], "output_loss": "mse"},
    # the AlexNet-like form of config/paper.yaml: conv -> max-pool -> conv -> max-pool -> linear
    "cnn": {"type": "cnn", "channels": [4, 6], "kernels": [3, 3], "paddings": [1, 1], "pools": [2, 2], "output_loss": "mse"},
    "cnn_strided": {"type": "cnn", "channels": [4, 6], "kernels": [3, 3], "strides": [1, 2], "output_loss": "mse"},
    "rnn": {"type": "rnn", "hidden": [12], "output_loss": "mse"},
}
IMAGE = (1, 8, 8)


def _batch(n: int = 6, seed: int = 1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *IMAGE, generator=g, dtype=dtype)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (n,), generator=g), 10).to(dtype)
    return x, y


def _nets(arch: str, loss: str = "mse"):
    cfg = {**SMALL[arch], "output_loss": loss}
    return (build_model(cfg, IMAGE, 10, "pre", 0, torch.float64), build_model(cfg, IMAGE, 10, "post", 0, torch.float64))


def _l1(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return sum(float((u - v).abs().sum()) for u, v in zip(a, b, strict=True))


def _divergence(arch: str, variants: dict, updates: int) -> dict[str, float]:
    p = analysis_params(
        "zil_divergence",
        {"architectures": [arch], "models": SMALL, "dtypes": ["float64"], "variants": variants, "updates": updates, "batch_size": 16, "lr": 0.05},
    )
    df = zil_divergence(p)
    return df[df["update"] == updates].set_index("variant")["divergence"].to_dict()


# ------------------------------------------------------------------------------------ over training
@pytest.mark.parametrize("arch", ["mlp", "cnn", "cnn_strided", "rnn"])
def test_zil_equals_bp_over_training_and_each_ablation_breaks_it(arch):
    """Sum |theta_BP - theta_Z-IL| <= 1e-10 after 60 lockstep updates in float64 (front-only path, the
    full loop and Fa-Z-IL); removing any one condition puts it at least 6 orders of magnitude higher."""
    div = _divergence(
        arch,
        {
            "zil": {"algorithm": "zil"},
            "zil_full_loop": {"algorithm": "zil", "hparams": {"front_only": False}},
            "fa_zil": {"algorithm": "fa_zil"},
            "gamma_half": {"algorithm": "zil", "hparams": {"gamma": 0.5}},
            "init_error": {"algorithm": "zil", "hparams": {"init_noise": 0.6}},
            "last_step": {"algorithm": "zil", "hparams": {"schedule": "last"}},
            "il": {"algorithm": "il_sgd", "hparams": {"T": 20, "gamma_bot": 0.1, "gamma_top": 0.1}},
        },
        updates=60,
    )
    for v in ("zil", "zil_full_loop", "fa_zil"):
        assert div[v] <= 1e-10, (v, div)
    for v in ("gamma_half", "init_error", "last_step", "il"):
        assert div[v] > 1e-4, (v, div)


# ------------------------------------------------------------------------------- single updates
@pytest.mark.parametrize("arch", ["mlp", "cnn", "cnn_strided", "rnn"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_zil_update_is_bp_gradient(arch, loss):
    pre, post = _nets(arch, loss)
    x, y = _batch()
    bp = bp_gradient(post, x, y)
    for dirs in (zil_front_directions(pre, x, y), zil_directions(pre, x, y), fa_zil_directions(pre, x, y)):
        assert _l1([-d for d in dirs], bp) < 1e-12


def test_zil_does_not_touch_the_loss(monkeypatch):
    """Z-IL's update comes from the PC network's local errors and value nodes: with the loss and BP's
    gradient made unusable it still runs (and still equals the BP gradient computed beforehand)."""
    pre, post = _nets("rnn")
    x, y = _batch()
    bp = bp_gradient(post, x, y)

    def boom(*a, **k):
        raise AssertionError("Z-IL called the loss")

    monkeypatch.setattr(Net, "loss", boom)
    monkeypatch.setattr("ilrepro.algorithms.bp.bp_gradient", boom)
    for hp in ({}, {"front_only": False}):
        algo = make_algorithm("zil", pre, 0.1, hp)
        assert _l1(algo.gradient(pre, x, y), bp) < 1e-12
    assert _l1(make_algorithm("fa_zil", pre, 0.1).gradient(pre, x, y), bp) < 1e-12


def test_fa_zil_has_no_clock():
    """Running Fa-Z-IL's loop for longer changes nothing: its gates have latched."""
    pre, _ = _nets("mlp")
    x, y = _batch()
    assert _l1(fa_zil_directions(pre, x, y), fa_zil_directions(pre, x, y, T=3 * pre.n_layers)) == 0.0


def test_plasticity_gate_opens_once_when_a_settled_error_turns_nonzero():
    gate = PlasticityGate()
    z, nz = torch.zeros(2, 3), torch.ones(2, 3)
    assert [gate(e) for e in (z, z, nz, nz, z, nz)] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


# ----------------------------------------------------------------- against independent references
def test_rnn_zil_equals_bptt_of_torch_rnn():
    """The RNN's Z-IL update equals BPTT computed by torch.nn.RNN (its own implementation)."""
    pre, _ = _nets("rnn")
    x, y = _batch()
    w_x, w_h, b_h, w_y, b_y = [p.clone() for p in pre.params]
    rnn = torch.nn.RNN(8, 12, nonlinearity="relu", batch_first=True).double()
    readout = torch.nn.Linear(12, 10).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w_x), rnn.weight_hh_l0.copy_(w_h), rnn.bias_ih_l0.copy_(b_h), rnn.bias_hh_l0.zero_()
        readout.weight.copy_(w_y), readout.bias.copy_(b_y)
    _, h_last = rnn(x[:, 0])  # (B, 8 rows, 8 pixels): one row per step
    logits = readout(h_last[0])
    loss = 0.5 * ((logits - y) ** 2).sum() / x.shape[0]
    ref = torch.autograd.grad(loss, [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, readout.weight, readout.bias])
    torch.testing.assert_close(logits.detach(), pre.logits(x), rtol=0, atol=1e-13)
    assert _l1([-d for d in zil_front_directions(pre, x, y)], list(ref)) < 1e-12


@pytest.mark.parametrize("arch", ["cnn", "cnn_strided"])
def test_cnn_zil_equals_autograd_on_a_torch_conv_net(arch):
    """Z-IL's update equals autograd on the same net written with torch.nn (conv, ReLU, max-pool)."""
    pre, _ = _nets(arch)
    x, y = _batch()
    w0, b0, w1, b1, w2, b2 = [p.clone() for p in pre.params]
    if arch == "cnn":  # conv(4, 3x3, pad 1) -> ReLU -> max-pool 2 -> conv(6, 3x3, pad 1) -> ReLU -> max-pool 2
        c0, c1 = torch.nn.Conv2d(1, 4, 3, padding=1).double(), torch.nn.Conv2d(4, 6, 3, padding=1).double()
        pool = [torch.nn.MaxPool2d(2)]
    else:
        c0, c1, pool = torch.nn.Conv2d(1, 4, 3).double(), torch.nn.Conv2d(4, 6, 3, stride=2).double(), []
    lin = torch.nn.Linear(24, 10).double()
    with torch.no_grad():
        for m, w, b in ((c0, w0, b0), (c1, w1, b1), (lin, w2, b2)):
            m.weight.copy_(w), m.bias.copy_(b)
    model = torch.nn.Sequential(c0, torch.nn.ReLU(), *pool, c1, torch.nn.ReLU(), *pool, torch.nn.Flatten(), lin)
    torch.testing.assert_close(model(x), pre.logits(x), rtol=0, atol=1e-13)
    loss = 0.5 * ((model(x) - y) ** 2).sum() / x.shape[0]
    ref = torch.autograd.grad(loss, list(model.parameters()))
    assert _l1([-d for d in zil_front_directions(pre, x, y)], list(ref)) < 1e-12
    assert (arch == "cnn") != pre.front_local  # a pooled layer takes autograd's products


def test_cnn_pools_shape_the_net_and_bad_lengths_name_the_key():
    from ilrepro.models import ModelError

    net = build_model(SMALL["cnn"], (1, 28, 28), 10, "post", 0)
    assert net.logits(torch.zeros(2, 1, 28, 28)).shape == (2, 10) and tuple(net.weights[-1].shape) == (10, 6 * 7 * 7)
    with pytest.raises(ModelError, match="pools"):
        build_model({**SMALL["cnn"], "pools": [2]}, IMAGE, 10, "post", 0)
    with pytest.raises(ModelError, match="no spatial extent"):
        build_model({**SMALL["cnn"], "pools": [4, 4]}, IMAGE, 10, "post", 0)


# ---------------------------------------------------------------------------------- the schedule
def test_schedule_is_graph_distance():
    pre, _ = _nets("rnn")  # 8 rows: layers 0..7 are time steps, layer 8 the readout
    assert update_steps(pre) == [8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert update_steps(pre, "last") == [8] * 9
    mlp, _ = _nets("mlp")
    assert graph_distances(mlp) == {3: 0, 2: 1, 1: 2}


def test_unequal_paths_are_refused():
    class Skip(Net):  # layer 2 also reads node 1: node 1 reaches the output along two path lengths
        def sources(self, l):
            return {0: (), 1: (1,), 2: (1, 2)}[l]

    mlp, _ = _nets("mlp")
    with pytest.raises(ValueError, match="paths of lengths"):
        graph_distances(Skip(mlp.layers, mlp.params, mlp.output_loss))


def test_rnn_parameterisations_are_the_same_function_and_shapes():
    pre, post = _nets("rnn", "ce")
    x, _ = _batch()
    torch.testing.assert_close(pre.logits(x), post.logits(x), rtol=0, atol=1e-13)
    assert [tuple(w.shape) for w in pre.weights] == [(12, 8), (12, 12), (10, 12)]
    assert len(pre.forward(x)) == 10  # x, h_1..h_8, logits
    with pytest.raises(ValueError, match="clamped input"):
        pre.layer(1, torch.zeros(2, 12))


def test_rnn_config_errors_name_the_key():
    from ilrepro.models import ModelError

    with pytest.raises(ModelError, match="model.hidden"):
        build_model({"type": "rnn", "hidden": [8, 8]}, IMAGE, 10, "pre", 0)


def test_cost_per_update_records_every_algorithm_and_the_hardware():
    from ilrepro.analyses.zil import cost_per_update

    p = analysis_params(
        "cost_per_update",
        {"architectures": ["mlp", "rnn"], "models": SMALL, "repeats": 3, "warmup": 1, "algorithms": {"bp_sgd": {"algorithm": "bp_sgd"}, "zil": {"algorithm": "zil"}}},
    )
    df = cost_per_update(p)
    assert len(df) == 4 and (df["ms_median"] > 0).all() and (df["repeats"] == 3).all()
    assert df["hardware"].str.len().min() > 0 and set(df["algo"]) == {"bp_sgd", "zil"}


# ------------------------------------------------------------------------- the written-out front
@pytest.mark.parametrize("param", ["pre", "post"])
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_rnn_local_products_equal_autograd(param, act):
    """RNNNet.local_products (the written-out rule the front path uses) against autograd on each
    step's layer function: feedback to the input node and every shared parameter's term."""
    net = build_model({**SMALL["rnn"], "activation": act}, IMAGE, 10, param, 0, torch.float64)
    assert net.front_local
    x, _ = _batch()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        h = [x] + [v + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype) for v in net.forward(x)[1:-1]]
    for l in range(net.n_layers):
        hl = h[l].clone().requires_grad_(True)
        ps = [p.clone().requires_grad_(True) for p in net.params]
        mu = net.layer(l, hl, ps, x)
        e = torch.randn(mu.shape, generator=g, dtype=mu.dtype)
        want = torch.autograd.grad(mu, [hl, *ps], grad_outputs=e, allow_unused=True)
        dh, terms = net.local_products(l, h[l], mu.detach(), e, x)
        if l == 0:
            assert dh is None  # layer 0 reads only the clamped input
        else:
            torch.testing.assert_close(dh, want[0], rtol=1e-12, atol=1e-12)
        got = dict(terms)
        for i, w in enumerate(want[1:]):
            if w is None or not bool(w.any()):
                assert i not in got or not bool(got[i].any())
            else:
                torch.testing.assert_close(got[i], w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch", ["mlp", "rnn"])
def test_written_out_front_equals_autograd_front(arch, monkeypatch):
    """infer_front with the written-out local rules gives the same Z-IL directions as with one autograd
    call per layer (the path convolutions take)."""
    pre, _ = _nets(arch)
    x, y = _batch()
    fast = zil_front_directions(pre, x, y)
    monkeypatch.setattr(type(pre), "front_local", property(lambda self: False))
    assert not pre.front_local  # the second run takes the autograd path
    slow = zil_front_directions(pre, x, y)
    assert _l1(fast, slow) < 1e-12
