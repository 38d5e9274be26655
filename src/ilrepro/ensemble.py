"""Several models of one algorithm entry trained together: every (learning rate, seed) member of a sweep.

Vectorised: the members' parameters are stacked along a new leading dimension and one algorithm step
runs for all of them at once, ``torch.func.vmap`` over the algorithm's own ``gradient`` (the same code
as for one model, so the same arithmetic); the optimiser then updates the stacked tensors with each
member's own step size (:mod:`ilrepro.optim`: per-member rates), which is the same element-wise update
as one optimiser per member. An algorithm whose gradient reads its rate (``lr_in_gradient``: IL-prox's
implicit-SGD target) gets each member's alpha as a vmapped tensor input, never a shared Python float.
Each member reads its own mini-batches, so a member trains exactly as it would alone (a test checks
equality with one-by-one training, different rates and a diverging member included). At batch 1 a step
is dominated by per-operation overhead, which the members now share.

Members are independent element-wise: a member whose weights go non-finite keeps stepping in its own
slice (its values never mix with the others'); the training loop stops evaluating and recording it.

Algorithms whose step cannot run under ``vmap`` (``Algorithm.vectorisable = False``: an iterative solver
with data-dependent stopping, a random schedule, an autograd call inside the step) train their members
one after another, in the same process.

On CUDA (:class:`CudaGraphStep`), the stacked step -- gathering every member's batch from the
device-resident training set, the vmapped gradient and the optimiser update -- is captured once as a
CUDA graph on static buffers and replayed per update: one host-to-device copy of the members' batch
indices and one graph launch. Evaluation is batched across members too (:meth:`Ensemble.logits_all`).

Members are exposed as ordinary :class:`Net` objects whose parameters are *views* of the stacked
tensors: evaluation, diagnostics and reference gradients use them unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import torch

from . import autodiff
from .algorithms import ALGORITHMS, make_algorithm
from .models import Net

__all__ = ["Ensemble", "CudaGraphStep"]

Tensor = torch.Tensor


class Ensemble:
    """``nets``: the members (same architecture); ``lrs``: one learning rate for all, or one per member;
    ``vectorise``: stack them if the algorithm allows."""

    def __init__(
        self, nets: list[Net], algorithm: str, lrs: float | Sequence[float], hparams: dict[str, Any] | None = None, vectorise: bool = True
    ) -> None:
        if not nets:
            raise ValueError("an ensemble needs at least one model")
        rates = [float(lrs)] * len(nets) if isinstance(lrs, (int, float)) else [float(v) for v in lrs]
        if len(rates) != len(nets):
            raise ValueError(f"{len(rates)} learning rates for {len(nets)} members")
        self.lrs = rates
        cls = ALGORITHMS.get(algorithm)
        self.vectorised = bool(vectorise and cls is not None and cls.vectorisable and len(nets) > 1)
        self.template = nets[0]
        self._alphas: Tensor | None = None
        if self.vectorised:
            stacked = [torch.stack(ps) for ps in zip(*(n.params for n in nets), strict=True)]
            self.stacked = dataclasses.replace(nets[0], params=stacked)
            self.algos = [make_algorithm(algorithm, self.stacked, rates[0], hparams, member_lrs=rates)]
            self.members = [dataclasses.replace(nets[0], params=[p[k] for p in stacked]) for k in range(len(nets))]
            algo = self.algos[0]
            template = self.template
            if algo.lr_in_gradient:
                # each member's rate in the parameters' dtype: the same float the member alone makes of it
                self._alphas = torch.tensor(rates, dtype=stacked[0].dtype, device=stacked[0].device)

            def one(ps: tuple[Tensor, ...], x: Tensor, t: Tensor) -> list[Tensor]:
                return algo.gradient(dataclasses.replace(template, params=list(ps)), x, t)

            def one_alpha(ps: tuple[Tensor, ...], x: Tensor, t: Tensor, alpha: Tensor) -> list[Tensor]:
                with algo.lr_as(alpha):
                    return algo.gradient(dataclasses.replace(template, params=list(ps)), x, t)

            self._vgrad: Callable[..., Any] = torch.func.vmap(one if self._alphas is None else one_alpha)

            def logits(ps: tuple[Tensor, ...], x: Tensor) -> Tensor:
                return algo.logits(dataclasses.replace(template, params=list(ps)), x)

            self._vlogits = torch.func.vmap(logits, in_dims=(0, None))
        else:
            self.members = list(nets)
            self.algos = [make_algorithm(algorithm, n, r, hparams) for n, r in zip(nets, rates, strict=True)]

    def __len__(self) -> int:
        return len(self.members)

    def algorithm(self, k: int):  # noqa: ANN201 - an Algorithm
        """The algorithm object that serves member k (its ``logits`` / ``reference_gradient`` read only
        the net they are given and the hyper-parameters)."""
        return self.algos[0] if self.vectorised else self.algos[k]

    def step(self, xs: list[Tensor], targets: list[Tensor], active: list[int], keep_gradient: bool = True) -> dict[int, list[Tensor]]:
        """One update of every member in ``active`` on its own batch (``xs[k]``, ``targets[k]``); returns
        each one's gradient estimate (without ``keep_gradient`` it may be []: see ``Algorithm.step``).
        Vectorised, all members step (a diverged member's non-finite values stay in its own slice); else
        only the active ones."""
        if not self.vectorised:
            return {k: self.algos[k].step(self.members[k], xs[k], targets[k], keep_gradient) for k in active}
        grads = self.step_stacked(torch.stack(xs), torch.stack(targets))
        return {k: [g[k] for g in grads] for k in active}

    def step_stacked(self, x: Tensor, target: Tensor) -> list[Tensor]:
        """Vectorised: one update of every member on its batch ``x[k]`` (stacked inputs and targets,
        leading dimension the members); returns the stacked gradient estimates."""
        if not self.vectorised:
            raise RuntimeError("step_stacked needs a vectorised ensemble")
        args = (tuple(self.stacked.params), x, target) if self._alphas is None else (tuple(self.stacked.params), x, target, self._alphas)
        with autodiff.vectorised():
            grads = list(self._vgrad(*args))
        self.algos[0].apply(self.stacked, grads)
        return grads

    @torch.no_grad()
    def logits_all(self, x: Tensor) -> Tensor:
        """Vectorised: every member's evaluation output on the same inputs, ``(members, N, ...)``."""
        if not self.vectorised:
            return torch.stack([self.algos[k].logits(m, x) for k, m in enumerate(self.members)])
        with autodiff.vectorised():
            return self._vlogits(tuple(self.stacked.params), x)


class CudaGraphStep:
    """The stacked step as a CUDA graph: ``replay(idx)`` runs one update of every member, member k on the
    training examples ``idx[k]`` (a CPU ``(members, batch)`` index tensor, from each member's own batch
    stream). Static buffers: the indices (copied in before each replay), the gathered batch and targets,
    the gradients; the parameters and optimiser state are the ensemble's own tensors, updated in place.

    Only for an optimiser whose step sizes are constants (SGD, or none): Adam's bias correction changes
    every step (a Python float baked into a captured graph would be wrong), so Adam runs the eager
    stacked step (:meth:`supported` says which). Not validated on hardware in this repository's CI: its
    test runs only where torch sees a GPU.
    """

    def __init__(self, ens: Ensemble, train_x: Tensor, make_targets: Callable[[Tensor, Tensor], Tensor], train_y: Tensor,
                 batch: int, warmup: int = 3) -> None:
        if not self.supported(ens):
            raise ValueError("a CUDA graph step needs a vectorised ensemble on CUDA with an SGD (or no) optimiser")
        self.ens = ens
        dev = ens.stacked.params[0].device
        self.idx_host = torch.zeros(len(ens), batch, dtype=torch.int64).pin_memory()
        self.idx = torch.zeros(len(ens), batch, dtype=torch.int64, device=dev)

        def run() -> list[Tensor]:
            flat = self.idx.flatten()
            x = train_x[flat]
            t = make_targets(x, train_y[flat])
            return ens.step_stacked(x.unflatten(0, (len(ens), batch)), t.unflatten(0, (len(ens), batch)))

        # the members' parameters must not move during warm-up: run it on copies, then restore
        saved = [p.detach().clone() for p in ens.stacked.params]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                run()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), _CaptureSafeConstants():
            self.grads = run()
        with torch.no_grad():
            for p, s in zip(ens.stacked.params, saved, strict=True):
                p.copy_(s)
        _reset_optimiser(ens)

    @staticmethod
    def supported(ens: Ensemble) -> bool:
        return ens.vectorised and ens.stacked.params[0].device.type == "cuda" and ens.algos[0].optimiser != "adam"

    def replay(self, idx: Tensor) -> list[Tensor]:
        """One update of every member on its examples ``idx`` (CPU, ``(members, batch)``); returns the
        static gradient buffers (valid until the next replay)."""
        self.idx_host.copy_(idx)
        self.idx.copy_(self.idx_host, non_blocking=True)
        self.graph.replay()
        return self.grads


class _CaptureSafeConstants(torch.overrides.TorchFunctionMode):
    """While a graph is captured: ``torch.tensor(<a Python number>, device=<cuda>)`` -- a host-to-device
    copy that synchronises, illegal during capture (pytorch/pytorch#168991) -- becomes ``torch.full``, a
    fill kernel of the same value (the same float: both convert the number to the dtype). The inference
    loop's step sizes (energy.py) and IL-prox's constants are made that way on every call."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        kwargs = kwargs or {}
        device = kwargs.get("device")
        if func is torch.tensor and len(args) == 1 and isinstance(args[0], (int, float)) and device is not None and torch.device(device).type == "cuda":
            return torch.full((), args[0], dtype=kwargs.get("dtype"), device=device)
        return func(*args, **kwargs)


def _reset_optimiser(ens: Ensemble) -> None:
    """Clear an SGD optimiser's momentum buffers in place (after the graph's warm-up steps): the next
    step then starts them as a fresh optimiser's first step would (buf = g). A captured graph holds the
    buffers' addresses, so they are zeroed, not replaced; with momentum the first captured step is then
    buf = m * 0 + g = g, the same value."""
    opt = ens.algos[0].opt
    for buf in getattr(opt, "buffers", []):
        if buf is not None:
            buf.zero_()
