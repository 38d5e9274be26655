"""An evaluation's first layer kept up to date instead of recomputed (the papers' batch-1 runs).

The papers' protocol evaluates the full test set every ``eval_every`` updates; at batch 1 that is most of
a run's arithmetic (E1 on CIFAR-10: 10,000 images x 5.3M weights every 50 one-image updates). Between two
evaluations the first weight matrix moves by W1' - W1 = D, and for every algorithm whose update of W1 is
built from the batches' first-layer inputs (a gradient of W1 is sum_b delta_b a_bᵀ: SGD on BP, IL,
IL-prox, BP-prox, Z-IL), D lies in the span of the r = eval_every x batch_size input rows seen since. With
Q an orthonormal basis of those rows (QR) and P = D Q, D = P Qᵀ, and the test set's first-layer
product moves by

    X D^T = (X Q) P^T        N r (d_in + d_out) multiply-adds instead of N d_in d_out,

15x fewer on the CIFAR-10 MLP at batch 1. Nothing is assumed: the part of D outside the span,
||D - P Qᵀ||, is measured at every evaluation, and where it exceeds the float rounding of W1's own
updates (:data:`TOL_ULPS` x eps x ||W1|| x sqrt(r): Adam, momentum, anything else) that member is
evaluated in full from then on (the plain feedforward evaluation, as if nothing were kept), with one log line. Every :data:`REFRESH` evaluations the product is
recomputed in full, so rounding does not accumulate. Measured against the full evaluation: see
tests/test_first_layer.py (the measures to float tolerance), and :func:`kept_fraction` for where it is used.
"""

from __future__ import annotations

import logging
import math

import torch

from .algorithms.base import Algorithm
from .models import ACTIVATIONS, Net

__all__ = ["REFRESH", "TOL_ULPS", "FirstLayer", "applies", "in_span", "kept_fraction", "mean_fraction"]

log = logging.getLogger("ilrepro.first_layer")
Tensor = torch.Tensor

_said: set[str] = set()  # labels already logged as falling back

REFRESH = 20  # a full product every REFRESH evaluations (the first one included)
TOL_ULPS = 8.0  # the residual allowed, in units of eps x ||W1|| x sqrt(rows): the rounding of the updates
# The kept layer's products (r = 50 columns: X Q, (X Q) Pᵀ, D Q, the residual) run below a full product's
# rate. Measured (torch profiler, one Intel Xeon thread, 2026-12-02): on the CIFAR-10 MLP 5.4 GFLOP in
# ~55 ms (0.6 of the 160 GFLOP/s of the full product), on 784-256-256-10 1.1 GFLOP in ~16 ms (0.44)
EFFICIENCY = 0.5


def applies(net: Net, algorithm: type[Algorithm]) -> bool:
    """The algorithm predicts by the feedforward pass (not, e.g., a free equilibrium), and the model's
    starts with a plain linear layer of the chain (not a convolution, not the RNN, whose layers also
    read the input)."""
    s = net.layers[0]
    return (algorithm.logits is Algorithm.logits and type(net).layer is Net.layer and type(net).forward is Net.forward
            and s.kind == "linear" and s.pool == 1)


def _fraction(rows: int, d_in: int, d_out: int, n_test: int) -> float:
    """The time of one kept-up-to-date evaluation's first layer over the full product's: its multiply-adds
    (X Q, (X Q) Pᵀ, the QR, the projection D Q and the residual D - P Qᵀ) over the full product's, at
    :data:`EFFICIENCY` of the full product's rate."""
    flops = n_test * rows * (d_in + d_out) + 2 * d_out * d_in * rows + d_in * rows * rows
    return flops / (n_test * d_in * d_out) / EFFICIENCY


def mean_fraction(rows: int, d_in: int, d_out: int, n_test: int, n_evals: int | None = None) -> float:
    """The first layer's average cost per evaluation over ``n_evals`` evaluations (default: a long run), a
    full product at the first and every :data:`REFRESH`-th."""
    n = REFRESH if n_evals is None else max(1, n_evals)
    full = math.ceil(n / REFRESH)
    return (full + (n - full) * _fraction(rows, d_in, d_out, n_test)) / n


def kept_fraction(how: bool | str, d_in: int, d_out: int, rows: int, n_test: int, n_evals: int | None = None) -> float | None:
    """The first layer's average cost (:func:`mean_fraction` over ``n_evals``) where a job keeps it up to date, else None:
    ``how`` is the experiment's ``keep_first_layer``: false never, true always, ``auto`` where it pays
    (at most half the full product; rows = eval_every x batch_size: the batch-1 runs of the large MLPs).
    The caller has checked that it :func:`applies`."""
    if how is False:
        return None
    if how is not True and mean_fraction(rows, d_in, d_out, n_test) > 0.5:
        return None
    return mean_fraction(rows, d_in, d_out, n_test, n_evals)


def in_span(d: Tensor, rows: Tensor, w: Tensor) -> tuple[Tensor, Tensor, bool]:
    """(Q, P, ok): an orthonormal basis Q of ``rows``, P = d Q, and whether d = P Qᵀ to the rounding of
    w's updates (the residual ||d - P Qᵀ|| measured, not assumed). In w's dtype: the residual's own
    rounding, eps ||d||, is far below the tolerance while ||d|| is below a few ||w||."""
    q = torch.linalg.qr(rows.t()).Q
    p = d @ q
    residual = float(torch.linalg.vector_norm(torch.addmm(d, p, q.t(), alpha=-1)))
    tol = TOL_ULPS * torch.finfo(w.dtype).eps * float(w.norm()) * math.sqrt(rows.shape[0])
    return q, p, residual <= tol


class FirstLayer:
    """One member's test-set first-layer product X W1ᵀ (without the bias), kept up to date.

    :meth:`record` every training batch (before or after its update: only the rows matter), then
    :meth:`logits` at each evaluation."""

    def __init__(self, test_x: Tensor, label: str = "") -> None:
        self.test_x = test_x
        self.label = label
        self.x0: Tensor | None = None  # the first layer's input: the test set (flattened)
        self.product: Tensor | None = None  # X W1ᵀ for the whole test set
        self.w_ref: Tensor | None = None  # the W1 it was taken at
        self.rows: list[Tensor] = []
        self.since_full = 0
        self.on = True  # off for good once an update was not in the span (said once per label)
        self.full = self.kept = 0  # evaluations of each kind (tests, benchmarks)

    def record(self, x: Tensor, net: Net) -> None:
        if self.on:
            self.rows.append(net.presynaptic(0, x).detach())

    @torch.no_grad()
    def _full(self, net: Net) -> None:
        w = net.params[0]
        if self.x0 is None:  # the test set as the first layer reads it (a view where in_act is the identity)
            self.x0 = net.presynaptic(0, self.test_x)
        self.product = torch.mm(self.x0, w.t(), out=self.product)
        self.w_ref = w.detach().clone()
        self.since_full = 1
        self.full += 1

    @torch.no_grad()
    def sync(self, net: Net) -> None:
        """Bring the product to the member's current W1; once :attr:`on` is off, nothing (the caller
        evaluates in full, without :meth:`logits`)."""
        rows, self.rows = self.rows, []
        if not self.on:
            self.full += 1
            return
        if self.product is None or self.w_ref is None or self.since_full >= REFRESH or not rows:
            self._full(net)
            return
        w = net.params[0]
        d = w - self.w_ref
        if not math.isfinite(float(torch.linalg.vector_norm(d))):  # a diverging run: the full product says so (NaN)
            self._full(net)
            return
        q, p, ok = in_span(d, torch.cat(rows), w)
        if not ok:
            self.on, self.product, self.w_ref = False, None, None
            self.full += 1
            if self.label not in _said:
                _said.add(self.label)
                log.warning("ilrepro: the first layer of the evaluations is not kept up to date%s: the update of W1 is "
                            "not in the span of the batches' inputs (an optimiser with state, e.g. Adam); evaluating in full",
                            f" ({self.label})" if self.label else "")
            return
        assert self.x0 is not None
        self.product.addmm_(self.x0 @ q, p.t())  # the whole test set at once: (N x r) (r x d_out)
        self.w_ref.copy_(w)
        self.since_full += 1
        self.kept += 1

    def logits(self, net: Net, i: int, j: int) -> Tensor:
        """The feedforward output for test images i..j from the kept product (call :meth:`sync` first)."""
        assert self.product is not None
        h = ACTIVATIONS[net.layers[0].out_act](self.product[i:j] + net.params[1])
        for l in range(1, net.n_layers):
            h = net.layer(l, h)
        return h
