"""pcx's side of ``ilrepro bench --against pcx``: a worker process that trains pcx (JAX, jit-compiled)
on the bench's workload when asked, so that its timings interleave with ilrepro's in one run.

Run as ``python -m ilrepro.compare.pcx_worker`` (by :mod:`ilrepro.compare.pcx`, pinned to one core, XLA
on one thread). Protocol, one JSON object per line: the parent sends ``{"setting": {...}, "updates": n}``
(or ``{"eval": true, "setting": ...}``); the worker trains that many updates on its own stream of
Fashion-MNIST batches and answers ``{"seconds": s}`` (training only, after ``block_until_ready``).
``{"quit": true}`` ends it. The model is the papers' MLP (784-256-256-10, ReLU hidden layers, softmax
cross-entropy output), float32, built once per setting and compiled before the first timed call:

* ``il_sgd``: pcx's standard predictive-coding training step (its MLP example): feedforward
  initialisation, T inference steps of SGD on the value nodes (step ``gamma``), one SGD step on the
  weights (``lr``); the output node clamped to the label.
* ``bp_sgd``: the same pcx layers, backprop of the cross-entropy (``jax.value_and_grad``) and optax SGD.
"""

from __future__ import annotations

import json
import os
import sys
import time
from itertools import pairwise
from typing import Any

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if os.environ.get("ILREPRO_PCX_CORE"):  # pinned before jax starts its threads
    os.sched_setaffinity(0, {int(os.environ["ILREPRO_PCX_CORE"])})

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pcx as px
import pcx.functional as pxf
import pcx.nn as pxnn
import pcx.predictive_coding as pxc
import pcx.utils as pxu


class MLP(pxc.EnergyModule):
    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.act_fn = px.static(jax.nn.relu)
        self.layers = [pxnn.Linear(a, b) for a, b in pairwise(sizes)]
        self.vodes = [pxc.Vode() for _ in sizes[1:-1]] + [pxc.Vode(pxc.ce_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        for v, layer in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(layer(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")

    def logits(self, x: jax.Array) -> jax.Array:  # feedforward, no value nodes
        for layer in self.layers[:-1]:
            x = self.act_fn(layer(x))
        return self.layers[-1](x)


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0), out_axes=0)
def forward(x: jax.Array, y: jax.Array, *, model: MLP) -> jax.Array:
    return model(x, y)


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy(x: jax.Array, *, model: MLP) -> tuple[jax.Array, jax.Array]:
    y_ = model(x, None)
    return jax.lax.psum(model.energy(), "batch"), y_


@pxf.jit(static_argnums=0)
def il_step(T: int, x: jax.Array, y: jax.Array, *, model: MLP, optim_w: pxu.Optim, optim_h: pxu.Optim) -> None:
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))  # the free value nodes
    for _ in range(T):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True)(energy)(x, model=model)
        optim_h.step(model, g["model"])
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = pxf.value_and_grad(pxu.M_hasnot(pxnn.LayerParam, frozen=True).to([False, True]), has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"], scale_by=1.0 / x.shape[0])


def _ce(model: MLP, x: jax.Array, y: jax.Array) -> jax.Array:
    logits = jax.vmap(model.logits)(x)
    return -(y * jax.nn.log_softmax(logits)).sum(-1).mean()


@pxf.jit()
def bp_step(x: jax.Array, y: jax.Array, *, model: MLP, optim_w: pxu.Optim) -> None:
    _, g = pxf.value_and_grad(pxu.M_hasnot(pxnn.LayerParam, frozen=True).to([False, True]))(
        lambda x, y, *, model: _ce(model, x, y))(x, y, model=model)
    optim_w.step(model, g["model"])


@pxf.jit()
def predict(x: jax.Array, *, model: MLP) -> jax.Array:
    return jax.vmap(model.logits)(x)


class Setting:
    def __init__(self, s: dict[str, Any], data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.s = s
        self.algo, self.B, self.T = s["algorithm"], int(s["batch_size"]), int(s.get("T", 0))
        self.train_x, self.train_y, self.test_x = data
        self.model = MLP([784, *s.get("hidden", [256, 256]), 10])
        self.rng = np.random.default_rng(int(s.get("seed", 0)))
        with pxu.step(self.model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):  # create the value nodes
            forward(jnp.zeros((self.B, 784), jnp.float32), jnp.zeros((self.B, 10), jnp.float32), model=self.model)
            self.optim_h = pxu.Optim(lambda: optax.sgd(float(s.get("gamma", 0.02))))
            self.optim_w = pxu.Optim(lambda: optax.sgd(float(s.get("lr", 0.01))), pxu.M(pxnn.LayerParam)(self.model))
        self.train(3)  # compile

    def batch(self) -> tuple[jax.Array, jax.Array]:
        idx = self.rng.integers(0, len(self.train_y), self.B)
        return jnp.asarray(self.train_x[idx]), jnp.asarray(np.eye(10, dtype=np.float32)[self.train_y[idx]])

    def train(self, n: int) -> float:
        batches = [self.batch() for _ in range(n)]  # drawn before the clock starts, as ilrepro's are indexed
        jax.block_until_ready(batches)
        t0 = time.perf_counter()
        for x, y in batches:
            if self.algo == "bp_sgd":
                bp_step(x, y, model=self.model, optim_w=self.optim_w)
            else:
                il_step(self.T, x, y, model=self.model, optim_w=self.optim_w, optim_h=self.optim_h)
        jax.block_until_ready(jax.tree_util.tree_leaves(pxu.M(pxnn.LayerParam)(self.model)))
        return time.perf_counter() - t0

    def evaluate(self) -> float:
        x = jnp.asarray(self.test_x)
        jax.block_until_ready(predict(x, model=self.model))  # compile
        t0 = time.perf_counter()
        jax.block_until_ready(predict(x, model=self.model))
        return time.perf_counter() - t0


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ilrepro.data import load_dataset

    d = load_dataset("fashion_mnist", None)
    return (d.train_x.flatten(1).float().numpy(), d.train_y.numpy(), d.test_x.flatten(1).float().numpy())


def main() -> int:
    data = _data()
    settings: dict[str, Setting] = {}
    print(json.dumps({"ready": True, "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("quit"):
            break
        key = json.dumps(msg["setting"], sort_keys=True)
        if key not in settings:
            settings[key] = Setting(msg["setting"], data)
        st = settings[key]
        out = {"seconds": st.evaluate()} if msg.get("eval") else {"seconds": st.train(int(msg["updates"]))}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
