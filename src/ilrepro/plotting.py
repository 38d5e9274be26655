"""Helpers the figure notebooks share: read aggregated tables, pick the selected learning rates,
save a figure as PDF and PNG atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .algorithms import display_name  # noqa: E402
from .io import atomic_write  # noqa: E402

__all__ = ["read_tables", "selected_runs", "save_figure", "display_name"]



def read_tables(tables: Sequence[str], summaries: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = pd.concat([pd.read_parquet(p) for p in tables], ignore_index=True)
    s = pd.concat([pd.read_csv(p) for p in summaries], ignore_index=True)
    return t, s


def selected_runs(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of each algorithm entry at its selected learning rate (best mean final accuracy)."""
    sel = summary.loc[summary["selected"], ["experiment", "algo", "lr"]]
    out = table.merge(sel, on=["experiment", "algo", "lr"])
    out["label"] = [f"{display_name(a)} (α={lr:g})" for a, lr in zip(out["algorithm"], out["lr"])]
    return out


def save_figure(fig: plt.Figure, pdf: str, png: str, dpi: int = 150) -> None:
    for path, kw in ((pdf, {}), (png, {"dpi": dpi})):
        suffix = Path(path).suffix.lstrip(".")
        atomic_write(Path(path), lambda p, kw=kw, suffix=suffix: fig.savefig(p, format=suffix, bbox_inches="tight", **kw))
