"""Analyses: experiments that are not one (algorithm, learning rate, seed) training run — the papers'
theory and diagnostic figures (energy during inference, nudge sweeps, Z-IL divergence, ...).

An analysis is a function ``params -> tidy DataFrame`` registered under a *kind* with its default
parameters; the config names an analysis, its kind and parameter overrides, and the ``analysis`` rule
writes ``results/analyses/<name>.parquet``. Importing this package registers every analysis module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

__all__ = ["ANALYSES", "AnalysisKind", "register_analysis", "analysis_params", "run_analysis_spec"]

AnalysisFn = Callable[[dict[str, Any]], pd.DataFrame]


@dataclass(frozen=True)
class AnalysisKind:
    kind: str
    fn: AnalysisFn
    defaults: dict[str, Any]
    doc: str


ANALYSES: dict[str, AnalysisKind] = {}


def register_analysis(kind: str, defaults: dict[str, Any]) -> Callable[[AnalysisFn], AnalysisFn]:
    def deco(fn: AnalysisFn) -> AnalysisFn:
        ANALYSES[kind] = AnalysisKind(kind, fn, dict(defaults), (fn.__doc__ or "").strip())
        return fn

    return deco


def analysis_params(kind: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated by the config's overrides; an unknown kind or key raises KeyError naming it."""
    if kind not in ANALYSES:
        raise KeyError(f"unknown analysis kind '{kind}'; known: {', '.join(sorted(ANALYSES)) or 'none'}")
    a = ANALYSES[kind]
    unknown = set(overrides) - set(a.defaults)
    if unknown:
        raise KeyError(f"'{sorted(unknown)[0]}' is not a parameter of analysis kind '{kind}'; it takes: {', '.join(sorted(a.defaults))}")
    return {**a.defaults, **overrides}


def run_analysis_spec(spec: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run an analysis job (see :func:`ilrepro.experiments.analysis_spec`); returns (table, metadata)."""
    import time

    import torch

    from ..runtime import environment_meta

    torch.set_num_threads(int(spec.get("threads", 1)))
    params = analysis_params(spec["kind"], spec.get("params", {}))
    if "device" in ANALYSES[spec["kind"]].defaults and "device" not in spec.get("params", {}):
        params["device"] = spec.get("device", "cpu")
    if "data_dir" in ANALYSES[spec["kind"]].defaults and "data_dir" not in spec.get("params", {}):
        params["data_dir"] = spec.get("data", {}).get("dir")  # where data sets are looked for
    t0 = time.perf_counter()
    table = ANALYSES[spec["kind"]].fn(params)
    table.insert(0, "analysis", spec.get("analysis", spec["kind"]))
    meta = {"spec": spec, "params": params, "wall_s": time.perf_counter() - t0, **environment_meta(spec.get("device", "cpu"))}
    return table, meta


def _register_all() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


_register_all()
