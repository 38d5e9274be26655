"""Models as an ordered list of layers, each a function  mu_{l+1} = f_l(h_l; theta_l).

This is the one form that BP, every IL variant and Z-IL read: BP composes the layers; a predictive-coding
network gives every layer output its own value node h_{l+1} and an error e_{l+1} = h_{l+1} - mu_{l+1}.

A layer is  f_l(h) = out_act(A_l(in_act(h)))  with A_l affine (linear or convolution; a convolution may
be followed by max-pooling, inside the layer). The two parameterisations of Alonso et al. differ only
in where the nonlinearity sits:

* ``post`` (BP, IL-SGD, IL-Adam):  mu_{l+1} = phi(W_l h_l + b_l), last layer linear (logits).
* ``pre``  (IL-prox family, BP-prox, Z-IL):  mu_{l+1} = W_l phi(h_l) + b_l  (the input is not passed
  through phi: it is data, not a neuron).

The many-to-one RNN (:class:`RNNNet`) is the same kind of chain: one value node per time step, every
step's layer reading its image row from the clamped input and sharing the recurrent weights.

The last layer's output is the network's *logits*; the output link (softmax for cross-entropy, sigmoid for
binary cross-entropy, identity for squared error) turns them into the prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

__all__ = ["ACTIVATIONS", "FRONT_CONV_MAX", "LayerSpec", "Net", "RNNNet", "build_model", "divided_difference", "ModelError"]

Tensor = torch.Tensor
Parameterisation = Literal["post", "pre"]
OutputLoss = Literal["ce", "bce", "mse"]


class ModelError(ValueError):
    """A model configuration that cannot be built (unknown type, bad sizes)."""


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


# Derivatives of the activations, as functions of the activation's output (for out_act, where mu is at
# hand) or of its input (for in_act). Identity needs none. ReLU's 0/1 mask is written with sign (exactly
# 0.0 / 1.0 for a ReLU output y >= 0) rather than ``y > 0``: comparing with a Python scalar costs a
# scalar-to-tensor copy per call, which at batch 1 is most of the time of the operation.
_D_FROM_OUTPUT: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.sign,
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: 1 - y * y,
}
_D_FROM_INPUT: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": lambda h: torch.sign(torch.relu(h)),
    "sigmoid": lambda h: torch.sigmoid(h) * (1 - torch.sigmoid(h)),
    "tanh": lambda h: 1 - torch.tanh(h) ** 2,
}


def divided_difference(act: str, a: Tensor, v: Tensor, lam: float) -> Tensor:
    """[act(a + lam v) - act(a)] / lam, without subtracting the two values: for a small lam they agree
    to O(lam) and their float difference keeps only the last digits. Accurate to rounding in v:

    * identity: v;
    * ReLU, by cases: v where a and a + lam v are both above the kink, 0 where both are below, and the
      direct difference only for the units that cross it (one side is then 0, nothing cancels);
    * sigmoid: s(a + d) - s(a) = (1 - e^-d) s(-a) s(a + d) with d = lam v, every factor computed to
      relative rounding (-expm1(-d), and s(-a) rather than 1 - s(a));
    * tanh: tanh x = 2 s(2x) - 1, so 2 [s(2a + 2d) - s(2a)], the sigmoid's form.
    """
    if act == "identity":
        return v
    d = lam * v
    if act == "relu":
        z = a + d
        return torch.where((a > 0) & (z > 0), v, (torch.relu(z) - torch.relu(a)) / lam)
    if act == "sigmoid":
        return torch.expm1(-d).neg_().div_(lam).mul_(torch.sigmoid(-a)).mul_(torch.sigmoid(a + d))
    if act == "tanh":
        return divided_difference("sigmoid", 2 * a, 2 * v, lam).mul_(2)
    raise ModelError(f"no divided difference for activation '{act}'")


@dataclass(frozen=True)
class LayerSpec:
    kind: Literal["linear", "conv"]
    in_act: str
    out_act: str
    flatten_input: bool = False
    stride: int = 1
    padding: int = 0
    pool: int = 1  # a conv layer's max-pool window (= its stride) after the convolution; 1: none


def _conv_vjp(g: Tensor, a: Tensor, w: Tensor, spec: LayerSpec, mask: tuple[bool, bool, bool]) -> list[Tensor]:
    """The vector-Jacobian products of conv2d(a, w, b) with the cotangent g on its output: those of
    ``mask`` = (input, weight, bias) that are asked for, in that order. The kernel autograd itself calls
    for a convolution (so the same bits), and one that ``torch.func.vmap`` batches; for the input
    product ``a`` only gives the shape."""
    s, p = (spec.stride, spec.stride), (spec.padding, spec.padding)
    out = torch.ops.aten.convolution_backward(g, a, w, [w.shape[0]] if mask[2] else None, s, p, (1, 1), False, (0, 0), 1, mask)
    return [t for t, m in zip(out, mask) if m]


def _times_derivative(e: Tensor, act: str, at: Tensor, derivative: dict[str, Callable[[Tensor], Tensor]]) -> Tensor:
    """e * act'(.) with the derivative a function of ``at`` (``derivative``: of the activation's
    output or its input). ReLU's is a mask, applied as autograd applies it (one pass over a
    convolution's large activities, where sign-and-multiply takes two and a 0/1 tensor); the others
    multiply."""
    if act == "identity":
        return e
    if act == "relu":  # at > 0 <=> relu(at) > 0, for ReLU's input and its output alike
        return torch.ops.aten.threshold_backward(e, at, 0)
    return e * derivative[act](at)


# Z-IL's front on a CNN, one thread, written-out / autograd time: 0.81 on the digits CNN (B=64, 18k
# activities into conv layer 1), 0.84 / 0.92 / 1.08-1.11 on the Fashion-MNIST CNN [16, 32] at B = 4 / 16 / 64
# (43k / 173k / 692k), 0.94 on the digits CNN at B=512 (147k): the crossover lies near 350k
FRONT_CONV_MAX = 2**18


@dataclass
class Net:
    """A chain of layers with a flat parameter list ``[W_0, b_0, W_1, b_1, ...]``."""

    layers: list[LayerSpec]
    params: list[Tensor]
    output_loss: OutputLoss
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def layer_params(self, l: int, params: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        p = self.params if params is None else params
        return p[2 * l], p[2 * l + 1]

    @property
    def weight_index(self) -> list[int]:
        """Where the weight matrices (kernels) are in ``params``: one per layer, biases left out."""
        return list(range(0, len(self.params), 2))

    @property
    def weights(self) -> list[Tensor]:
        return [self.params[i] for i in self.weight_index]

    def sources(self, l: int) -> tuple[int, ...]:
        """The *free* value nodes layer l reads (the clamped input h_0 is not one): the graph that
        Z-IL's schedule is derived from. A chain: layer l reads node l."""
        return (l,) if l > 0 else ()

    def presynaptic(self, l: int, h: Tensor) -> Tensor:
        """The activity that layer l's weights multiply: in_act(h_l), flattened for a linear layer."""
        spec = self.layers[l]
        a = ACTIVATIONS[spec.in_act](h)
        return a.flatten(1) if spec.flatten_input else a

    def affine(self, l: int, a: Tensor, params: list[Tensor] | None = None) -> Tensor:
        """A_l(a): linear, or convolution then (``pool`` > 1) max-pooling. Pooling is part of the
        layer, not a value node of its own: it adds no step to Z-IL's schedule. Both parameterisations
        compute act(pool(conv)) (``post`` in this layer, ``pre`` in the next one's in_act), which for
        the monotone activations equals the usual conv -> act -> pool."""
        spec = self.layers[l]
        w, b = self.layer_params(l, params)
        if spec.kind == "linear":
            return F.linear(a, w, b)
        z = F.conv2d(a, w, b, stride=spec.stride, padding=spec.padding)
        return F.max_pool2d(z, spec.pool) if spec.pool > 1 else z

    def layer(self, l: int, h: Tensor, params: list[Tensor] | None = None, x: Tensor | None = None) -> Tensor:
        """mu_{l+1} = f_l(h_l; theta_l). ``x`` is the clamped input h_0: a chain ignores it, a model whose
        layers also read the input (the many-to-one RNN reads one image row per step) uses it."""
        return ACTIVATIONS[self.layers[l].out_act](self.affine(l, self.presynaptic(l, h), params))

    def increment(self, l: int, h: Tensor, pre: Tensor, u: Tensor, lam: float) -> tuple[Tensor, Tensor]:
        """Layer l moved from h to h + lam u, with ``pre`` = A_l(in_act(h)) its pre-activation at h:
        ([f_l(h + lam u) - f_l(h)] / lam, f_l(h + lam u)). The scaled change is the input activation's
        divided difference, through the affine map's linear part (no bias, no subtraction), then the
        output activation's (:func:`divided_difference`): O(1) numbers that never cancel. For the plain
        linear and conv layers of this class (:attr:`local_vjp`)."""
        spec = self.layers[l]
        du = divided_difference(spec.in_act, h, u, lam)
        w = self.params[2 * l]
        if spec.kind == "linear":
            da = F.linear(du.flatten(1) if spec.flatten_input else du, w)
        else:
            da = F.conv2d(du, w, None, stride=spec.stride, padding=spec.padding)
        out = spec.out_act
        return divided_difference(out, pre, da, lam), ACTIVATIONS[out](pre + lam * da)

    @property
    def local_vjp(self) -> bool:
        """True when every layer is a plain linear or convolutional layer of this class, whose
        vector-Jacobian products :meth:`linear_vjp` writes out (the fast path of the inference loop);
        else autograd is used (a pooled conv layer: its written-out rules do not include the pooling)."""
        return type(self).layer is Net.layer and all(s.kind in ("linear", "conv") and s.pool == 1 for s in self.layers)

    def linear_vjp(self, l: int, h: Tensor, mu: Tensor, e: Tensor, wrt: Literal["input", "params"]) -> list[Tensor]:
        """For layer l with output mu = f_l(h) and a cotangent e on it: ``wrt="input"`` gives
        [J_h^T e]; ``wrt="params"`` gives [dW, db] = [g^T a, sum_b g] with g = e * out_act'(.), a the
        presynaptic activity — the local Hebbian product, summed over the batch. A convolution's are the
        same products written as convolutions (:func:`_conv_vjp`: the transposed convolution of g with W,
        the correlation of g with a, the bias summed over batch and space). Tested against autograd."""
        spec = self.layers[l]
        if spec.kind == "conv":
            if wrt == "params":
                return self._conv_products(l, h, mu, e, False)
            return self._conv_products(l, h, mu, e, True, False)
        g = e * _D_FROM_OUTPUT[spec.out_act](mu) if spec.out_act != "identity" else e
        if wrt == "params":
            return [g.T @ self.presynaptic(l, h), g.sum(0)]
        dh = g @ self.params[2 * l]
        if spec.flatten_input:
            dh = dh.reshape(h.shape)
        return [dh * _D_FROM_INPUT[spec.in_act](h) if spec.in_act != "identity" else dh]

    def _conv_products(self, l: int, h: Tensor, mu: Tensor, e: Tensor, wrt_input: bool, wrt_params: bool = True) -> list[Tensor]:
        """:meth:`linear_vjp` of conv layer l, [J_h^T e] and/or [dW, db] from one kernel call (both
        at once for Z-IL's front, as autograd does)."""
        spec = self.layers[l]
        g = _times_derivative(e, spec.out_act, mu, _D_FROM_OUTPUT)
        a = self.presynaptic(l, h) if wrt_params else h  # the input product reads only its shape
        out = _conv_vjp(g, a, self.params[2 * l], spec, (wrt_input, wrt_params, wrt_params))
        if wrt_input:
            out[0] = _times_derivative(out[0], spec.in_act, h, _D_FROM_INPUT)
        return out

    @property
    def front_local(self) -> bool:
        """True when :meth:`local_products` writes out every layer's products (Z-IL's error front)."""
        return self.local_vjp

    def front_pays(self, x: Tensor) -> bool:
        """Whether Z-IL's front on batch ``x`` takes the written-out products (:attr:`front_local`)
        rather than autograd's. They recompute the presynaptic activity in_act(h) that autograd keeps
        from the forward pass, which on large convolutional activities costs more than the autograd
        calls save: written out only while every conv layer past the first reads fewer than
        ``FRONT_CONV_MAX`` activities (batch x channels x height x width)."""
        if not self.front_local:
            return False
        c, hh, ww = x.shape[1:]
        for l, spec in enumerate(self.layers):
            if spec.kind != "conv":
                break
            if l > 0 and x.shape[0] * c * hh * ww >= FRONT_CONV_MAX:
                return False
            w = self.params[2 * l]
            c, k = w.shape[0], w.shape[-1]
            hh, ww = ((n + 2 * spec.padding - k) // spec.stride + 1 for n in (hh, ww))
        return True

    def local_products(self, l: int, h: Tensor, mu: Tensor, e: Tensor, x: Tensor) -> tuple[Tensor | None, list[tuple[int, Tensor]]]:
        """Layer l's two local products with a cotangent e on its output mu = f_l(h): the feedback
        J_h^T e to its free input node (None for layer 0, which reads the clamped input ``x``) and its
        weight terms as (index into ``params``, term) pairs, summed over the batch."""
        if self.layers[l].kind == "conv":
            *dh, dw, db = self._conv_products(l, h, mu, e, l > 0)
            return (dh[0] if dh else None), [(2 * l, dw), (2 * l + 1, db)]
        dh = self.linear_vjp(l, h, mu, e, "input")[0] if l > 0 else None
        dw, db = self.linear_vjp(l, h, mu, e, "params")
        return dh, [(2 * l, dw), (2 * l + 1, db)]

    def forward(self, x: Tensor, params: list[Tensor] | None = None) -> list[Tensor]:
        """Feedforward pass; returns every layer's activity [h_0 = x, h_1, ..., h_L = logits]."""
        hs = [x]
        for l in range(self.n_layers):
            hs.append(self.layer(l, hs[-1], params, x))
        return hs

    def logits(self, x: Tensor, params: list[Tensor] | None = None) -> Tensor:
        return self.forward(x, params)[-1]

    # ---------------------------------------------------------------------------------- the output
    def link(self, logits: Tensor) -> Tensor:
        """The prediction: softmax (ce), sigmoid (bce) or identity (mse)."""
        if self.output_loss == "ce":
            return torch.softmax(logits, dim=-1)
        if self.output_loss == "bce":
            return torch.sigmoid(logits)
        return logits

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Batch-mean loss of the logits against a (soft) target of the same shape.

        Its gradient with respect to the logits is ``(link(logits) - target) / B`` for all three losses,
        which is what makes the output error ``e_L = target - link(logits)`` the same rule everywhere.
        """
        if self.output_loss == "ce":
            return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
        if self.output_loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]
        return 0.5 * ((logits - target) ** 2).sum() / logits.shape[0]

    def clone(self) -> "Net":
        return type(self)(self.layers, [p.detach().clone() for p in self.params], self.output_loss, dict(self.meta))


@dataclass
class RNNNet(Net):
    """Many-to-one RNN unrolled as a chain of K+1 layers (K = image rows, one row per time step).

    Value nodes h_1..h_K are the hidden states; layer k < K maps h_k to h_{k+1} and reads image row
    k+1 from the clamped input x (layer 0 reads row 1 only: the initial state is zero); layer K maps h_K
    to the logits. The flat parameter list is ``[W_x, W_h, b_h, W_y, b_y]``: every step's layer uses the
    *same* tensors, so autograd / a vjp through the chain sums the per-step contributions (BPTT).

    * ``post``: h_{k+1} = phi(W_h h_k + W_x s_{k+1} + b_h), logits = W_y h_K + b_y
    * ``pre``:  h_{k+1} = W_h phi(h_k) + W_x s_{k+1} + b_h, logits = W_y phi(h_K) + b_y
    (the same function of x; only what the value nodes hold differs).
    """

    @property
    def steps(self) -> int:
        return self.n_layers - 1

    def layer_params(self, l: int, params: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        p = self.params if params is None else params
        return (p[3], p[4]) if l == self.steps else (p[1], p[2])

    @property
    def weight_index(self) -> list[int]:
        return [0, 1, 3]  # W_x, W_h, W_y

    @staticmethod
    def row(x: Tensor, k: int) -> Tensor:
        """Time step k's input: image row k (all channels), flattened."""
        return x[:, :, k, :].flatten(1)

    def layer(self, l: int, h: Tensor, params: list[Tensor] | None = None, x: Tensor | None = None) -> Tensor:
        p = self.params if params is None else params
        spec = self.layers[l]
        if l == self.steps:  # readout
            return ACTIVATIONS[spec.out_act](F.linear(ACTIVATIONS[spec.in_act](h), p[3], p[4]))
        if x is None:
            raise ValueError("an RNN layer reads its image row from the clamped input: pass x")
        drive = F.linear(self.row(x, l), p[0], p[2])
        if l > 0:
            drive = drive + F.linear(ACTIVATIONS[spec.in_act](h), p[1])
        return ACTIVATIONS[spec.out_act](drive)

    @property
    def front_local(self) -> bool:
        return True

    def local_products(self, l: int, h: Tensor, mu: Tensor, e: Tensor, x: Tensor) -> tuple[Tensor | None, list[tuple[int, Tensor]]]:
        """:meth:`Net.local_products` of time step l (or the readout): the recurrent step's terms go
        to the shared W_x, W_h, b_h, one term per step (BPTT's sum). Tested against autograd."""
        spec = self.layers[l]
        g = e * _D_FROM_OUTPUT[spec.out_act](mu) if spec.out_act != "identity" else e
        a = ACTIVATIONS[spec.in_act](h)
        if l == self.steps:  # readout
            w, terms = self.params[3], [(3, g.T @ a), (4, g.sum(0))]
        else:
            w, terms = self.params[1], [(0, g.T @ self.row(x, l)), (2, g.sum(0))]
            if l > 0:
                terms.append((1, g.T @ a))
        if l == 0:
            return None, terms
        dh = g @ w
        return (dh * _D_FROM_INPUT[spec.in_act](h) if spec.in_act != "identity" else dh), terms


def _uniform(shape: tuple[int, ...], fan_in: int, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear / Conv2d default range
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1).mul_(bound).to(dtype)


def _acts(i: int, n: int, act: str, param: Parameterisation) -> tuple[str, str]:
    last = i == n - 1
    if param == "post":
        return "identity", ("identity" if last else act)
    return ("identity" if i == 0 else act), "identity"


def build_model(
    cfg: dict[str, Any],
    image_shape: tuple[int, int, int],
    n_classes: int,
    parameterisation: Parameterisation,
    seed: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Net:
    """Build a model from its config block, initialised from ``seed`` (same weights for both
    parameterisations, so BP and IL start from the same point)."""
    gen = torch.Generator().manual_seed(seed)
    kind = cfg.get("type", "mlp")
    act = cfg.get("activation", "relu")
    if act not in ACTIVATIONS:
        raise ModelError(f"model.activation: unknown activation '{act}'; known: {', '.join(ACTIVATIONS)}")
    c, h, w = image_shape
    n_in = c * h * w
    layers: list[LayerSpec] = []
    params: list[Tensor] = []
    if kind in ("mlp", "autoencoder"):
        n_out = n_in if kind == "autoencoder" else n_classes
        sizes = [n_in, *cfg.get("hidden", [])] + [n_out]
        for i in range(len(sizes) - 1):
            ia, oa = _acts(i, len(sizes) - 1, act, parameterisation)
            layers.append(LayerSpec("linear", ia, oa, flatten_input=(i == 0)))
            params += [_uniform((sizes[i + 1], sizes[i]), sizes[i], gen, dtype), _uniform((sizes[i + 1],), sizes[i], gen, dtype)]
        output_loss: OutputLoss = cfg.get("output_loss", "bce" if kind == "autoencoder" else "ce")
    elif kind == "cnn":
        channels = cfg.get("channels", [])
        kernels = cfg.get("kernels", [])
        strides = cfg.get("strides", [1] * len(channels))
        paddings = cfg.get("paddings", [0] * len(channels))
        pools = cfg.get("pools", [1] * len(channels))
        if not (len(channels) == len(kernels) == len(strides) == len(paddings) == len(pools)) or not channels:
            raise ModelError("model: a cnn needs channels, kernels (and optional strides, paddings, pools) of equal, non-zero length")
        n = len(channels) + 1
        cin, hh, ww = c, h, w
        for i, (cout, k, s, p, q) in enumerate(zip(channels, kernels, strides, paddings, pools)):
            ia, oa = _acts(i, n, act, parameterisation)
            layers.append(LayerSpec("conv", ia, oa, stride=s, padding=p, pool=q))
            fan = cin * k * k
            params += [_uniform((cout, cin, k, k), fan, gen, dtype), _uniform((cout,), fan, gen, dtype)]
            hh, ww = ((hh + 2 * p - k) // s + 1) // q, ((ww + 2 * p - k) // s + 1) // q
            if hh < 1 or ww < 1:
                raise ModelError(f"model: conv layer {i} leaves no spatial extent for a {h}x{w} input")
            cin = cout
        flat = cin * hh * ww
        ia, oa = _acts(n - 1, n, act, parameterisation)
        layers.append(LayerSpec("linear", ia, oa, flatten_input=True))
        params += [_uniform((n_classes, flat), flat, gen, dtype), _uniform((n_classes,), flat, gen, dtype)]
        output_loss = cfg.get("output_loss", "ce")
    elif kind == "rnn":
        hidden = cfg.get("hidden", [64])
        if len(hidden) != 1:
            raise ModelError(f"model.hidden: an rnn has one recurrent layer, give one size (got {hidden})")
        n_h, n_x = int(hidden[0]), c * w
        # layer 0 reads the input row only; layers 1..K-1 are recurrent steps; layer K is the readout
        for i in range(h + 1):
            ia = "identity" if (i == 0 or parameterisation == "post") else act
            oa = ("identity" if i == h else act) if parameterisation == "post" else "identity"
            layers.append(LayerSpec("linear", ia, oa))
        params = [
            _uniform((n_h, n_x), n_h, gen, dtype),  # W_x   (torch.nn.RNN's range 1/sqrt(hidden))
            _uniform((n_h, n_h), n_h, gen, dtype),  # W_h
            _uniform((n_h,), n_h, gen, dtype),  # b_h
            _uniform((n_classes, n_h), n_h, gen, dtype),  # W_y
            _uniform((n_classes,), n_h, gen, dtype),  # b_y
        ]
        params = [p.to(device) for p in params]
        return RNNNet(layers, params, cfg.get("output_loss", "ce"), {"type": kind, "parameterisation": parameterisation})
    else:
        raise ModelError(f"model.type: unknown model type '{kind}'; known: mlp, autoencoder, cnn, rnn")
    params = [p.to(device) for p in params]
    return Net(layers, params, output_loss, {"type": kind, "parameterisation": parameterisation})
