"""Analyses: experiments that are not one (algorithm, learning rate, seed) training run — the papers'
theory and diagnostic figures (energy during inference, nudge sweeps, Z-IL divergence, ...).

An analysis is a function ``params -> tidy DataFrame`` registered under a *kind* with its default
parameters; the config names an analysis, its kind and parameter overrides, and the ``analysis`` rule
writes ``results/analyses/<name>.parquet``. Importing this package registers every analysis module.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import torch

from ..data import recording_files
from ..runtime import environment_meta, job
from . import alonso, millidge, zil  # noqa: F401  (registration side effect)
from .registry import ANALYSES, AnalysisKind, analysis_params, register_analysis

__all__ = ["ANALYSES", "AnalysisKind", "register_analysis", "analysis_params", "run_analysis_spec"]


def run_analysis_spec(spec: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run an analysis job (see :func:`ilrepro.experiments.analysis_spec`); returns (table, metadata)."""
    torch.set_num_threads(int(spec.get("threads", 1)))
    params = analysis_params(spec["kind"], spec.get("params", {}))
    if "device" in ANALYSES[spec["kind"]].defaults and "device" not in spec.get("params", {}):
        params["device"] = spec.get("device", "cpu")
    if "data_dir" in ANALYSES[spec["kind"]].defaults and "data_dir" not in spec.get("params", {}):
        params["data_dir"] = spec.get("data", {}).get("dir")  # where data sets are looked for
    t0 = time.perf_counter()
    with job(f"analysis {spec.get('analysis', spec['kind'])}"), recording_files() as files:
        table = ANALYSES[spec["kind"]].fn(params)
    table.insert(0, "analysis", spec.get("analysis", spec["kind"]))
    meta = {"spec": spec, "params": params, "wall_s": time.perf_counter() - t0, "data_files": files,
            **environment_meta(spec.get("device", "cpu"))}
    return table, meta
