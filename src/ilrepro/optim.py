"""SGD (heavy-ball momentum) and Adam, the same element-wise operations in the same order as
``torch.optim``'s single-tensor implementations (a test checks bit-for-bit equality).

Why not ``torch.optim`` itself: its constructor imports ``torch._dynamo`` on first use, about 2.5 s of
start-up in every training job (90 jobs in the default pipeline), and its ``step`` carries hooks and
checks that cost more than the update itself at batch 1.

Stacked models (:mod:`ilrepro.ensemble`: members along each parameter's leading dimension) may give
every member its own learning rate: ``lr`` is then a sequence, one per member. Members with the same
rate next to each other form one group, updated as one slice with a Python-float step size: the same
kernel as a model trained alone, hence the same bits (a tensor of rates broadcast over the parameters
would round the product separately where ``add_(g, alpha=-lr)`` fuses it).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import torch

__all__ = ["SGD", "Adam", "Optimiser", "lr_groups"]

log = logging.getLogger("ilrepro.optim")

Tensor = torch.Tensor


def lr_groups(lr: float | Sequence[float]) -> list[tuple[slice, float]]:
    """``(members, rate)`` for each run of equal rates: one group over everything for a single rate."""
    if isinstance(lr, (int, float)):
        return [(slice(None), float(lr))]
    rates = [float(v) for v in lr]
    if not rates:
        raise ValueError("per-member learning rates: the list is empty")
    if len(set(rates)) == 1:
        return [(slice(None), rates[0])]
    groups: list[tuple[slice, float]] = []
    start = 0
    for k in range(1, len(rates) + 1):
        if k == len(rates) or rates[k] != rates[start]:
            groups.append((slice(start, k), rates[start]))
            start = k
    return groups


class Optimiser:
    """Updates ``params`` in place from each parameter's ``.grad``; ``lr``: one rate, or one per member
    of stacked parameters (their leading dimension)."""

    def __init__(self, params: list[Tensor], lr: float | Sequence[float]) -> None:
        self.params = list(params)
        self.groups = lr_groups(lr)
        n = None if isinstance(lr, (int, float)) else len(lr)
        if n is not None and any(p.dim() == 0 or p.shape[0] != n for p in self.params):
            raise ValueError(f"{n} per-member learning rates need parameters stacked along a leading dimension of {n}")
        self.lr = self.groups[0][1] if len(self.groups) == 1 else float("nan")  # one rate, or nan: several

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimiser):
    """p <- p - lr * g, or with momentum m:  buf <- m * buf + g (buf = g at the first step), p <- p - lr * buf."""

    def __init__(self, params: list[Tensor], lr: float | Sequence[float], momentum: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = float(momentum)
        self.buffers: list[Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = p.grad
            if self.momentum != 0:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = g.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(g, alpha=1.0)
                g = buf
            if len(self.groups) == 1:
                p.add_(g, alpha=-self.lr)
                continue
            for members, lr in self.groups:
                p[members].add_(g[members], alpha=-lr)


class Adam(Optimiser):
    """Adam (Kingma & Ba) with torch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.

    The loop in :meth:`step` is the readable reference. With one learning rate (a model alone, not
    stacked members with rates of their own), every tensor on one device and in one dtype, and
    ``ILREPRO_FUSED_ADAM`` not ``0``, :meth:`step` runs torch's own fused kernel
    (``torch._fused_adam_``, what ``torch.optim.Adam(fused=True)`` calls: one pass over each tensor
    instead of seven, 6.5x faster on the CIFAR MLP's 5.3M weights on one thread); a test shows both give
    the same weights to float rounding (so a model alone and the same model stacked with others, which
    takes the reference, agree to rounding, not bit for bit). Where the kernel cannot run (no such op, a batched tensor under
    ``vmap``) the reference runs, and the log says so once."""

    def __init__(self, params: list[Tensor], lr: float | Sequence[float], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self._steps: list[Tensor] | None = None  # the fused kernel's step counters (float tensors, = self.t)

    def _fused(self) -> bool:
        if len(self.groups) != 1 or os.environ.get("ILREPRO_FUSED_ADAM", "1") == "0" or not hasattr(torch, "_fused_adam_"):
            return False
        p0 = self.params[0]
        return all(p.device == p0.device and p.dtype == p0.dtype and p.dtype in (torch.float32, torch.float64) for p in self.params)

    @torch.no_grad()
    def step(self) -> None:
        if self._fused():
            try:
                self._fused_step()
                return
            except (RuntimeError, NotImplementedError, TypeError) as err:  # e.g. a batched tensor under vmap
                if not _said_adam:
                    _said_adam.append(True)
                    log.info("ilrepro.optim: torch's fused Adam kernel not taken (%s); the reference step runs", str(err).splitlines()[0][:120])
        self.t += 1
        bias_correction1 = 1 - self.beta1 ** float(self.t)
        bias_correction2 = 1 - self.beta2 ** float(self.t)
        bias_correction2_sqrt = bias_correction2**0.5
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            if len(self.groups) == 1:
                p.addcdiv_(m, denom, value=-(self.lr / bias_correction1))
                continue
            for members, lr in self.groups:
                p[members].addcdiv_(m[members], denom[members], value=-(lr / bias_correction1))

    def _fused_step(self) -> None:
        if self._steps is None:
            self._steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        for st in self._steps:
            st.fill_(self.t + 1)
        torch._fused_adam_(self.params, [p.grad for p in self.params], self.m, self.v, [], self._steps, lr=self.lr, beta1=self.beta1,
                           beta2=self.beta2, weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
        self.t += 1


_said_adam: list[bool] = []
