"""The registry of analysis kinds: a kind is a function ``params -> tidy DataFrame`` and its default
parameters; the analysis modules register theirs with :func:`register_analysis`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

__all__ = ["ANALYSES", "AnalysisKind", "register_analysis", "analysis_params"]

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
