"""Run-time helpers shared by training, the analyses and the bench: dtypes, the device, the output
target of a batch, the cosine of two parameter lists, a spec's seeds, and where-and-with-what metadata."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

from . import __version__, mkl_vendor
from .models import Net

__all__ = ["DTYPES", "resolve_device", "targets", "cosine", "gradient_agreement", "seeds_of", "lrs_of", "environment_meta", "Progress", "job", "tracked"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    """``auto``: a GPU where torch sees one, else the CPU; ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' was asked for but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(name)


def targets(net: Net, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """What the output is trained towards: one-hot labels, or the input itself for an autoencoder."""
    if net.meta.get("type") == "autoencoder":
        return x.flatten(1)
    return torch.nn.functional.one_hot(y, n_classes).to(x.dtype)


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Cosine similarity of two parameter-shaped lists, taken as one flat vector each."""
    dot = sum(float((x * y).sum()) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(float((x * x).sum()) for x in a))
    nb = math.sqrt(sum(float((y * y).sum()) for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else float("nan")


def gradient_agreement(a: list[torch.Tensor], b: list[torch.Tensor], weight_index: list[int]) -> dict[str, float]:
    """How an update direction ``a`` agrees with a reference gradient ``b`` (parameter-shaped lists), in
    float64 and read back in one transfer: ``layers`` the cosine of each weight matrix (``weight_index``:
    which entries are the layers' weights, biases left out) averaged over layers, with no epsilon (the
    per-layer measure of Millidge et al.); ``flat`` the cosine of all parameters as one vector
    (:func:`cosine`); ``sqdist`` sum ||a - b||^2 over all parameters. A zero norm makes a cosine NaN."""
    a64 = [t.detach().to(torch.float64) for t in a]
    b64 = [t.detach().to(torch.float64) for t in b]
    dots = torch.stack([(x * y).sum() for x, y in zip(a64, b64, strict=True)])
    na = torch.stack([(x * x).sum() for x in a64])
    nb = torch.stack([(y * y).sum() for y in b64])
    w = torch.tensor(weight_index, device=dots.device)
    per_layer = dots[w] / (na[w] * nb[w]).sqrt()
    flat = dots.sum() / (na.sum() * nb.sum()).sqrt()
    sqdist = torch.stack([((x - y) ** 2).sum() for x, y in zip(a64, b64)]).sum()
    layers, flat_v, sq = torch.stack([per_layer.mean(), flat, sqdist]).tolist()
    return {"layers": layers, "flat": flat_v, "sqdist": sq}


def seeds_of(spec: dict[str, Any]) -> list[int]:
    """The seeds a spec trains: ``seeds`` (a list, trained together) or one ``seed``."""
    seeds = [int(s) for s in spec["seeds"]] if "seeds" in spec else [int(spec["seed"])]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    return seeds


def lrs_of(spec: dict[str, Any]) -> list[float]:
    """The learning rates a spec trains: ``lrs`` (a list: one stacked job of an algorithm entry's sweep)
    or one ``lr``."""
    lrs = [float(v) for v in spec["lrs"]] if "lrs" in spec else [float(spec["lr"])]
    if not lrs or len(set(lrs)) != len(lrs):
        raise ValueError(f"learning rates must be distinct and non-empty, got {lrs}")
    return lrs


def environment_meta(device: torch.device | str) -> dict[str, Any]:
    """Where and with what a job ran: device, hardware, threads, library versions, the source's git commit
    (``+dirty`` with uncommitted changes; None outside a checkout), host, SLURM job."""
    device = resolve_device(str(device))
    return {
        "device": str(device),
        "git_commit": _git_commit(),
        "hardware": _hardware(device),
        "threads": torch.get_num_threads(),
        "versions": {
            "ilrepro": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "blas": {"mkl_vendor": mkl_vendor.status, "mkl_code_path": mkl_vendor.code_path()},
    }


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from, if it runs from one."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                proc = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{proc} ({os.cpu_count()} logical CPUs)"


class Progress:
    """One flushed line per report of a long job, for ``tail -f`` on its log: how far (``done`` of
    ``total``), time elapsed, the ETA at the rate so far, and the latest metrics."""

    def __init__(self, label: str, total: int, unit: str = "update", stream: Any = None) -> None:
        self.label, self.total, self.unit = label, max(1, int(total)), unit
        self.stream = stream if stream is not None else sys.stdout
        self.t0 = time.perf_counter()

    def __call__(self, done: int, **latest: Any) -> str:
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - done) if done > 0 else float("nan")
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in latest.items())
        line = (f"{self.label}: {self.unit} {done}/{self.total} ({100 * done / self.total:.0f} %), "
                f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}" + (f"; {metrics}" if metrics else ""))
        print(line, file=self.stream, flush=True)
        return line


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


_JOB: list[str] = []  # the label of the analysis job running in this process, if any

T = TypeVar("T")


@contextlib.contextmanager
def job(label: str) -> Iterator[None]:
    """Within this block :func:`tracked` loops report their progress under ``label``."""
    _JOB.append(label)
    try:
        yield
    finally:
        _JOB.pop()


def tracked(items: Iterable[T], rows: list[dict[str, Any]] | None = None, what: str = "step") -> Iterator[T]:
    """The items of an analysis' outer loop, reporting a :class:`Progress` line after each one while a
    :func:`job` is running (silent otherwise, e.g. in tests), with the numbers of the last row written."""
    items = list(items)
    report = Progress(_JOB[-1], len(items), what) if _JOB else None
    for i, item in enumerate(items, start=1):
        yield item
        if report is not None:
            last = rows[-1] if rows else {}
            report(i, **{k: v for k, v in last.items() if isinstance(v, float)})
