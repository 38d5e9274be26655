"""Gradients and vector-Jacobian products for the algorithms, in one place.

Outside ``vmap`` they use ``torch.autograd`` (about half the per-call overhead of ``torch.func`` at the
papers' small sizes); inside the vmapped step of :mod:`ilrepro.ensemble` (several seeds at once), where
``torch.autograd.grad`` cannot run, ``torch.func``. Both compute the same products: a test checks that.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch

__all__ = ["vectorised", "in_vmap", "vjp", "grad"]

Tensor = torch.Tensor
_depth = 0


@contextlib.contextmanager
def vectorised() -> Iterator[None]:
    """Mark the code inside as running under ``torch.func.vmap``."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def in_vmap() -> bool:
    return _depth > 0


def vjp(
    f: Callable[..., Sequence[Tensor]], primals: Sequence[Tensor], cotangents: Callable[[list[Tensor]], Sequence[Tensor]]
) -> tuple[list[Tensor], list[Tensor]]:
    """Outputs of ``f`` at ``primals`` (detached) and the vector-Jacobian products J^T c for every primal,
    with the cotangents c = ``cotangents(outputs)`` (they may depend on the outputs)."""
    with torch.enable_grad():
        if in_vmap():
            out, pullback = torch.func.vjp(lambda *p: tuple(f(*p)), *primals)
            return list(out), list(pullback(tuple(cotangents(list(out)))))
        leaves = [p.detach().requires_grad_(True) for p in primals]
        out = list(f(*leaves))
        detached = [o.detach() for o in out]
        grads = torch.autograd.grad(out, leaves, grad_outputs=list(cotangents(detached)))
        return detached, list(grads)


def grad(f: Callable[[list[Tensor]], Tensor], params: Sequence[Tensor]) -> list[Tensor]:
    """d f(params) / d params for a scalar f."""
    with torch.enable_grad():
        if in_vmap():
            return list(torch.func.grad(lambda ps: f(list(ps)))(tuple(params)))
        leaves = [p.detach().requires_grad_(True) for p in params]
        return list(torch.autograd.grad(f(leaves), leaves))
