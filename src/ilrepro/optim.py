"""SGD (heavy-ball momentum) and Adam, the same element-wise operations in the same order as
``torch.optim``'s single-tensor implementations (a test checks bit-for-bit equality).

Why not ``torch.optim`` itself: its constructor imports ``torch._dynamo`` on first use, about 2.5 s of
start-up in every training job (90 jobs in the default pipeline), and its ``step`` carries hooks and
checks that cost more than the update itself at batch 1.
"""

from __future__ import annotations

import torch

__all__ = ["SGD", "Adam", "Optimiser"]

Tensor = torch.Tensor


class Optimiser:
    """Updates ``params`` in place from each parameter's ``.grad``."""

    def __init__(self, params: list[Tensor], lr: float) -> None:
        self.params = list(params)
        self.lr = float(lr)

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimiser):
    """p <- p - lr * g, or with momentum m:  buf <- m * buf + g (buf = g at the first step), p <- p - lr * buf."""

    def __init__(self, params: list[Tensor], lr: float, momentum: float = 0.0) -> None:
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
            p.add_(g, alpha=-self.lr)


class Adam(Optimiser):
    """Adam (Kingma & Ba) with torch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay."""

    def __init__(self, params: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        bias_correction1 = 1 - self.beta1 ** float(self.t)
        bias_correction2 = 1 - self.beta2 ** float(self.t)
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)
