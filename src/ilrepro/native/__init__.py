"""The native fast path: one C++ call per update for chains of linear layers (``chain.cpp``).

The pure-torch code (:func:`ilrepro.energy.infer`, :func:`ilrepro.energy.weight_directions`,
:func:`ilrepro.algorithms.bp.bp_gradient`) stays the reference; this module only decides whether the
fast path can run and calls it. It runs for a plain :class:`~ilrepro.models.Net` whose layers are all
linear (MLP, autoencoder), on the CPU, in float32 or float64, outside ``vmap`` (stacked seeds take the
reference). A test checks both give the same weights after many updates.

The extension is built on first use with PyTorch's own tooling (``torch.utils.cpp_extension.load``,
ninja) into ``$ILREPRO_CACHE`` (default ``$XDG_CACHE_HOME/ilrepro`` or ``~/.cache/ilrepro``) under
``torch_extensions/<name>``, the name keyed by the source, the flags, torch's version and the CPU
(``-march=native``), so a change rebuilds and two machines never share a binary; torch's file lock in
the build folder serialises concurrent builds. ``ILREPRO_NATIVE=0`` turns the fast path off. When it
cannot run (switched off, no compiler, a failed build, an unsupported model) the reference runs and
the log says so in one line (once per reason and process).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .. import autodiff, layout
from ..models import Net

__all__ = ["available", "bp_gradient", "cache_dir", "calls", "chain_args", "il_directions", "load", "ready", "reset"]

Tensor = torch.Tensor
log = logging.getLogger("ilrepro.native")

SOURCE = Path(__file__).with_name("chain.cpp")
CFLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp-simd"]
_ACT = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}
_LINK = {"ce": 0, "bce": 1, "mse": 2}
_TARGET = {"hard": 0, "soft": 1, "prox": 2}

# calls that ran natively, per entry (tests check that the fast path really ran)
calls: dict[str, int] = {"il_directions": 0, "bp_gradient": 0}
_module: ModuleType | None = None
_tried = False
_said: set[str] = set()


def _say(reason: str, level: int = logging.WARNING) -> None:
    """One log line per reason and process."""
    if reason not in _said:
        _said.add(reason)
        log.log(level, "ilrepro native fast path not taken (%s); the pure-torch reference runs", reason)


def reset() -> None:
    """Forget the loaded module, the checked nets and the reasons already logged (tests)."""
    global _module, _tried
    _module, _tried = None, False
    _said.clear()
    _CHECKED.clear()


def cache_dir() -> Path:
    return layout.cache_root() / "torch_extensions"


def _cpu() -> str:
    """The CPU as -march=native sees it: model name and ISA flags."""
    model = flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")) and not flags:
                flags = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()}|{model}|{flags}"


def _name() -> str:
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(CFLAGS).encode(), torch.__version__.encode(), _cpu().encode()):
        key.update(part)
    return f"ilrepro_chain_{key.hexdigest()[:16]}"


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    name = _name()
    build = cache_dir() / name
    build.mkdir(parents=True, exist_ok=True)
    # build from a copy kept in the cache (the name hashes its content): every checkout of the same source
    # then hands ninja the same path and time stamp, and loads the built module instead of recompiling
    source = build / SOURCE.name
    if not source.exists() or source.read_bytes() != SOURCE.read_bytes():
        tmp = build / f".{SOURCE.name}.{os.getpid()}"
        tmp.write_bytes(SOURCE.read_bytes())
        os.replace(tmp, source)
    t0 = time.perf_counter()
    mod = cpp_extension.load(name=name, sources=[str(source)], extra_cflags=CFLAGS, build_directory=str(build), verbose=False)
    log.info("ilrepro native: %s ready in %.1f s (%s)", name, time.perf_counter() - t0, build)
    return mod


def load() -> ModuleType | None:
    """The compiled extension, built on first use; None (and one log line) where it cannot be had."""
    global _module, _tried
    if os.environ.get("ILREPRO_NATIVE", "1") == "0":
        _say("ILREPRO_NATIVE=0")
        return None
    if not _tried:
        _tried = True
        try:
            _module = _build()
        except Exception as err:  # noqa: BLE001 — no compiler, no ninja, a failed build: the reference runs
            first = (str(err).strip().splitlines() or [""])[-1][:200]
            _say(f"the C++ extension could not be built: {type(err).__name__}: {first}")
            _module = None
    return _module


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within the block the fast path's "not taken" lines are not logged, and the reasons met are not
    remembered as said (so a training later in the process still logs its own)."""
    saved, level = set(_said), log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
        _said.clear()
        _said.update(saved)


@contextlib.contextmanager
def disabled(yes: bool = True) -> Iterator[None]:
    """Within the block (if ``yes``) the pure-torch reference takes every update, as under
    ``ILREPRO_NATIVE=0``: to time or compare the reference itself."""
    old = os.environ.get("ILREPRO_NATIVE")
    if yes:
        os.environ["ILREPRO_NATIVE"] = "0"
    try:
        yield
    finally:
        if yes and old is None:
            os.environ.pop("ILREPRO_NATIVE", None)
        elif yes:
            os.environ["ILREPRO_NATIVE"] = old


def available() -> bool:
    return load() is not None


def net_unfit(net: Net) -> str:
    """Why the fast path cannot train ``net`` (its model, device or dtype), or "" where it can."""
    ps = net.params
    if type(net) is not Net or any(s.kind != "linear" for s in net.layers):
        return f"model '{net.meta.get('type', type(net).__name__)}' is not a chain of linear layers"
    if any(p.device.type != "cpu" for p in ps):
        return f"device {ps[0].device.type}"
    if ps[0].dtype not in (torch.float32, torch.float64) or any(p.dtype != ps[0].dtype for p in ps):
        return f"dtype {ps[0].dtype}"
    if net.layers[0].in_act != "identity" or net.output_loss not in _LINK:
        return "input layer with an input activation"
    return ""


def serves(net: Net, algorithm: type, hparams: dict[str, Any] | None = None) -> bool:
    """Whether ``algorithm`` (a class) with ``hparams`` trains ``net`` by the fast path, one model at a
    time: it has a native step for them (``has_native``), the net fits, and the extension builds."""
    return bool(algorithm.has_native(hparams)) and not net_unfit(net) and available()


def chain_args(net: Net, x: Tensor, y: Tensor) -> tuple[list[Any], str]:
    """The fast path's arguments for ``net`` on (x, y): ([W, b, x2d, y, in_acts, out_acts, link], "")
    where it applies, else ([], the reason)."""
    if autodiff.in_vmap():
        return [], "under vmap (stacked seeds)"
    ps = net.params
    hit = _CHECKED.get(id(net))
    if (hit is not None and type(net) is Net and hit[0] == list(map(id, ps)) and x.dtype is hit[1] and y.dtype is hit[1]
            and x.device.type == "cpu"):
        # the same parameter tensors (held by the cache, so the ids are theirs) as checked before
        return [hit[2], hit[3], x.reshape(x.shape[0], -1).contiguous(), y.reshape(y.shape[0], -1).contiguous(), *_codes(net)], ""
    why = net_unfit(net)
    if why:
        return [], why
    if x.device.type != "cpu":
        return [], f"device {x.device.type}"
    if x.dtype != ps[0].dtype or y.dtype != x.dtype:
        return [], f"dtype {x.dtype}"
    if any(p.requires_grad for p in ps) or not all(p.is_contiguous() for p in ps):
        return [], "parameters that require grad or are not contiguous"
    x2 = x.reshape(x.shape[0], -1).contiguous()
    y2 = y.reshape(y.shape[0], -1).contiguous()
    codes = _codes(net)
    if len(_CHECKED) >= 4:  # it holds the tensors: a few nets only
        _CHECKED.clear()
    _CHECKED[id(net)] = (list(map(id, ps)), x.dtype, ps[0::2], ps[1::2])
    return [ps[0::2], ps[1::2], x2, y2, *codes], ""


# nets whose parameters passed the checks (the last few): id(net) -> (ids of its parameter tensors, dtype, W, b,
# codes); it holds the tensors, so a matching id list means the same tensors
_CHECKED: dict[int, tuple[list[int], torch.dtype, list[Tensor], list[Tensor]]] = {}


_CODES: dict[int, tuple[Any, list[int], list[int], int]] = {}


def _codes(net: Net) -> tuple[list[int], list[int], int]:
    """The layers' activation codes and the link's, kept per layer list (a few microseconds a call at batch 1)."""
    hit = _CODES.get(id(net.layers))
    if hit is None or hit[0] is not net.layers or hit[3] != _LINK[net.output_loss]:
        if len(_CODES) > 256:
            _CODES.clear()
        hit = _CODES[id(net.layers)] = (
            net.layers, [_ACT[s.in_act] for s in net.layers], [_ACT[s.out_act] for s in net.layers], _LINK[net.output_loss]
        )
    return hit[1], hit[2], hit[3]


def _ready(net: Net, x: Tensor, y: Tensor) -> tuple[Any, list[Any]] | None:
    """The built extension and the call's arguments, or None (said once) where the fast path cannot run."""
    args, why = chain_args(net, x, y)
    if why:
        _say(why, logging.INFO if why.startswith("under vmap") else logging.WARNING)
        return None
    mod = load()
    return None if mod is None else (mod, args)


def ready(net: Net, x: Tensor, y: Tensor) -> bool:
    """Whether the fast path runs for ``net`` on (x, y) (said once where it does not): for a caller that
    must prepare work before the call (BP-prox's soft target: y's shape and dtype)."""
    return _ready(net, x, y) is not None


def _kept(keep: bool, lr: float | None, caller: str) -> bool:
    """``keep`` for the extension; not keeping the directions is only meaningful with a step to take."""
    if not keep and lr is None:
        raise ValueError(f"native.{caller}: keep=False without a step (lr) would do nothing")
    return bool(keep)


def il_directions(
    net: Net, x: Tensor, y: Tensor, target: tuple[str, float, float], T: int, gamma_top: float, gamma_bot: float,
    negate: bool = False, divisor: float | None = None, prox_eps: float | None = None, lr: float | None = None, exact: bool = False,
    keep: bool = True,
) -> list[Tensor] | None:
    """The weight directions after T inference steps (``weight_directions(net, infer(...))``), or with
    ``prox_eps`` IL-prox's normalised update (``il_prox_update``), then negated (``negate``) and divided
    by ``divisor``, in the reference's order of operations; ``target``: ("hard", 0, 0),
    ("soft", n, 0) or ("prox", alpha, eps). None where the fast path does not apply (the caller runs
    the reference). ``lr``: also take the plain SGD step p <- p - lr * (returned tensor), in place.
    ``exact``: the reference's GEMM layouts (its bits), for updates that amplify rounding (soft targets
    n y + (1 - n) p, where e_L cancels); else a faster layout, the same to float rounding. ``keep``
    false (with ``lr``): the caller does not read the directions: [] is returned, and at batch 1 they
    are never written out (the step reads and writes each weight once; the same bits)."""
    keep = _kept(keep, lr, "il_directions")
    ready = _ready(net, x, y)
    if ready is None:
        return None
    mod, args = ready
    kind, t1, t2 = target
    eps = math.nan if prox_eps is None else float(prox_eps)
    div = math.nan if divisor is None else float(divisor)
    step = math.nan if lr is None else float(lr)
    calls["il_directions"] += 1
    return mod.il_directions(*args, _TARGET[kind], float(t1), float(t2), int(T), float(gamma_top), float(gamma_bot), bool(negate), div, eps, step, bool(exact), keep)


def bp_gradient(net: Net, x: Tensor, y: Tensor, lr: float | None = None, norms: list[Tensor] | None = None,
                keep: bool = True) -> list[Tensor] | None:
    """dLoss/dtheta of the batch-mean loss (``algorithms.bp.bp_gradient``) against ``y`` (one-hot or a
    soft target), or None where the fast path does not apply; ``norms``: each layer's weights and bias
    divided by its own (BP-prox's n_l, 0-dim tensors: read only where the fast path runs, never under
    vmap); ``lr``: also the plain SGD step, in place; ``keep``: as for :func:`il_directions`."""
    keep = _kept(keep, lr, "bp_gradient")
    ready = _ready(net, x, y)
    if ready is None:
        return None
    mod, args = ready
    calls["bp_gradient"] += 1
    return mod.bp_gradient(*args, math.nan if lr is None else float(lr), [] if norms is None else [float(v) for v in norms], keep)
