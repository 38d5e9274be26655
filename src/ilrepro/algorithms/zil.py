"""Zero-divergence inference learning (Z-IL) and its clock-free form Fa-Z-IL (Song et al. 2020;
Salvatori et al. 2021).

Z-IL is inference learning under three conditions: (C1) zero initial error — the value nodes start at
the feedforward pass; (C2) each layer's weights are updated once, at the inference step equal to the
graph distance of the layer's output node to the output (:func:`ilrepro.energy.graph_distances`), from
the local error and value nodes at that step; (C3) integration step gamma = 1. Then the error front moves
back one node per step, the local error a layer reads equals BP's delta, and the update is BP's, exactly,
for MLPs, CNNs and the many-to-one RNN (whose shared weights collect one term per time step: BPTT).

Two computations of the same rule:

* the front-only path (default): :func:`ilrepro.energy.infer_front` does only the work on the error
  front, so one update costs about one BP step (each layer's products by its written-out local rule
  for the MLP, the CNN and the RNN);
* the full loop: every node takes every inference step (:func:`ilrepro.energy.infer`) and a hook reads
  each layer at its scheduled step. It is what the ablations change — gamma, a non-zero initial error,
  all layers read at the last step — each of which breaks the equality.

Fa-Z-IL runs the full loop with no schedule at all: every layer's update is multiplied by a plasticity
gate Phi on its output error node (:class:`PlasticityGate`), open only at the first step at which that
node's settled (zero) error becomes non-zero. No layer knows the step count.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..energy import InferenceConfig, PCState, graph_distances, infer, infer_front, layer_directions
from ..models import Net
from .base import Algorithm, Tensor, register
from .il import hard_clamp

__all__ = ["ZIL", "FaZIL", "PlasticityGate", "update_steps", "zil_directions", "zil_front_directions", "fa_zil_directions"]

Schedule = Literal["distance", "last"]


def update_steps(net: Net, schedule: Schedule = "distance") -> list[int]:
    """The inference step at which each layer reads its local error: the graph distance of its output
    node to the output (``distance``, Z-IL), or the last of these for every layer (``last``, an ablation)."""
    dist = graph_distances(net)
    steps = [dist[l + 1] for l in range(net.n_layers)]
    if schedule == "last":
        return [max(steps)] * len(steps)
    if schedule != "distance":
        raise ValueError(f"schedule: unknown Z-IL schedule '{schedule}'; known: distance, last")
    return steps


def zil_front_directions(net: Net, x: Tensor, y: Tensor) -> list[Tensor]:
    """Z-IL's update direction (-dF/dtheta, batch mean) on the front-only path."""
    return [a / x.shape[0] for a in infer_front(net, x, hard_clamp(y))]


def zil_directions(
    net: Net,
    x: Tensor,
    y: Tensor,
    gamma: float = 1.0,
    schedule: Schedule = "distance",
    init_noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """Z-IL's update direction on the full inference loop, each layer read at its scheduled step.
    ``init_noise`` > 0 starts the hidden nodes at the feedforward values plus that much Gaussian noise
    (a non-zero initial error)."""
    steps = update_steps(net, schedule)
    with torch.no_grad():
        h = net.forward(x)[:-1]
    if init_noise > 0:
        h = [h[0]] + [v + init_noise * torch.randn(v.shape, generator=generator, dtype=v.dtype).to(v.device) for v in h[1:]]
    acc: list[Tensor] = [torch.zeros_like(p) for p in net.params]

    def read(t: int, st: PCState) -> None:
        for l in (l for l, s in enumerate(steps) if s == t):
            for a, d in zip(acc, layer_directions(net, l, st.h[l], x, st.errors[l])):
                a.add_(d)

    infer(net, x, hard_clamp(y), InferenceConfig(max(steps), gamma, gamma), h=h, on_step=read)
    return acc


class PlasticityGate:
    """Phi for one error node: 1 at the first step at which the node's error, settled at exactly zero
    before the target was presented, becomes non-zero (the feedback front has arrived); 0 before and
    ever after (it latches)."""

    def __init__(self) -> None:
        self.settled = True  # the error was zero at the previous step
        self.fired = False

    def __call__(self, e: Tensor) -> float:
        now_zero = not bool(e.any())
        phi = 1.0 if (self.settled and not now_zero and not self.fired) else 0.0
        self.fired = self.fired or phi > 0
        self.settled = now_zero
        return phi


def fa_zil_directions(net: Net, x: Tensor, y: Tensor, T: int | None = None) -> list[Tensor]:
    """Fa-Z-IL: the input settles the net (feedforward, all errors zero), then the output is presented
    and the full loop runs with gamma = 1; each layer's local update is multiplied by its gate Phi."""
    gates = [PlasticityGate() for _ in range(net.n_layers)]
    acc: list[Tensor] = [torch.zeros_like(p) for p in net.params]

    def read(t: int, st: PCState) -> None:
        for l, gate in enumerate(gates):
            phi = gate(st.errors[l])
            if phi:
                for a, d in zip(acc, layer_directions(net, l, st.h[l], x, st.errors[l])):
                    a.add_(d, alpha=phi)

    infer(net, x, hard_clamp(y), InferenceConfig(net.n_layers if T is None else int(T), 1.0, 1.0), on_step=read)
    return acc


@register
class ZIL(Algorithm):
    """Z-IL with SGD; its only hyper-parameter is the learning rate, shared with BP. The others exist
    for the ablations: any condition removed runs the full inference loop."""

    name = "zil"
    vectorisable = False  # a CNN's error front runs autograd.backward layer by layer
    parameterisation = "pre"
    defaults = {"gamma": 1.0, "schedule": "distance", "init_noise": 0.0, "front_only": True}
    choices = {"schedule": ("distance", "last")}

    def __init__(self, net: Net, lr: float, hparams: dict | None = None) -> None:
        super().__init__(net, lr, hparams)
        self.gen = torch.Generator().manual_seed(0)

    @property
    def exact_conditions(self) -> bool:
        hp = self.hp
        return float(hp["gamma"]) == 1.0 and hp["schedule"] == "distance" and float(hp["init_noise"]) == 0.0

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        if self.hp["front_only"] and self.exact_conditions:
            return [a.mul_(-1.0 / x.shape[0]) for a in infer_front(net, x, hard_clamp(target))]
        else:
            hp = self.hp
            dirs = zil_directions(net, x, target, float(hp["gamma"]), hp["schedule"], float(hp["init_noise"]), self.gen)
        return [-d for d in dirs]


@register
class FaZIL(Algorithm):
    """Fa-Z-IL with SGD: no clock, a plasticity gate on every error node. ``T`` = inference steps run
    (null: the number of layers, enough for the front to cross the net; more change nothing)."""

    name = "fa_zil"
    vectorisable = False  # the plasticity gate branches on the data (is an error node non-zero?)
    parameterisation = "pre"
    defaults = {"T": None}
    types = {"T": int}

    def gradient(self, net: Net, x: Tensor, target: Tensor) -> list[Tensor]:
        return [-d for d in fa_zil_directions(net, x, target, self.hp["T"])]
