"""Which BLAS kernel torch's matmul runs here, and how fast: for the bench's metadata (a GEMM far
below the core's peak, e.g. MKL's generic path on a non-Intel CPU, shows up here first)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import torch

from .. import mkl_vendor

__all__ = ["blas_report", "mm_gflops"]

_PROBE = "import torch; torch.set_num_threads(1); a = torch.rand(64, 256); w = torch.rand(256, 256); torch.mm(a, w.t())"
# the same rates in a fresh process without ilrepro.mkl_vendor's shim: the "before" of the vendor fix
_BEFORE = ("import json, ilrepro, torch; from ilrepro import mkl_vendor; from ilrepro.compare.blas import mm_gflops; "
           "torch.set_num_threads(1); print(json.dumps({'mkl_vendor': mkl_vendor.status, 'mkl_code_path': mkl_vendor.code_path(), "
           "'mm_gflops_1_thread': {'64x256x256': mm_gflops(64, 256, 256), '1024x1024x1024 contiguous': mm_gflops(1024, 1024, 1024, False)}}))")


def mm_gflops(m: int, k: int, n: int, transposed: bool = True, seconds: float = 0.3) -> float:
    """GFLOP/s of ``torch.mm`` (m x k) @ (k x n), the weight as ``W.t()`` (a linear layer) or contiguous."""
    a, w = torch.rand(m, k), torch.rand(n, k) if transposed else torch.rand(k, n)
    b = w.t() if transposed else w
    out = torch.empty(m, n)
    for _ in range(5):
        torch.mm(a, b, out=out)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b, out=out)
        reps += 1
    return 2.0 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def blas_report() -> dict[str, Any]:
    """torch's BLAS (from ``torch.__config__.show()``), the CPU vendor, MKL's own account of the code
    path it dispatches to (``MKL_VERBOSE=1``), bare ``torch.mm`` GFLOP/s on one thread, MKL's code path
    (:mod:`ilrepro.mkl_vendor`) and, where its vendor fix is applied, the code path and rates without it."""
    cfg = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", cfg)
    mkl = re.search(r"Math Kernel Library Version ([^\n]+)", cfg)
    vendor = mkl_vendor.cpu_vendor()
    verbose = ""
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, "MKL_VERBOSE": "1"}, capture_output=True, text=True, timeout=120,
                           check=False)
        verbose = "\n".join(ln for ln in r.stdout.splitlines() if ln.startswith("MKL_VERBOSE"))[:600]
    except (OSError, subprocess.SubprocessError) as err:
        verbose = f"(probe failed: {err})"
    before: dict[str, Any] = {}
    if mkl_vendor.status == "applied":
        try:
            r = subprocess.run([sys.executable, "-c", _BEFORE], env={**os.environ, "ILREPRO_MKL_VENDOR": "0"}, capture_output=True, text=True,
                               timeout=300, check=True)
            before = json.loads(r.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as err:
            before = {"error": str(err)[:200]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = {f"{m}x{k}x{n}{'' if t else ' contiguous'}": mm_gflops(m, k, n, t)
                 for m, k, n, t in ((1, 256, 256, True), (64, 256, 256, True), (64, 256, 256, False), (64, 784, 256, True), (1024, 1024, 1024, False))}
    finally:
        torch.set_num_threads(threads)
    return {"blas": blas.group(1) if blas else "", "mkl": mkl.group(1).strip() if mkl else "", "cpu_vendor": vendor,
            "mkl_verbose": verbose, "mm_gflops_1_thread": rates,
            "mkl_vendor": mkl_vendor.status, "mkl_code_path": mkl_vendor.code_path(), "without_vendor_fix": before,
            "dispatch_env": {k: v for k, v in os.environ.items() if k.startswith(("MKL_", "DNNL_", "ONEDNN_", "OMP_", "KMP_"))}}
