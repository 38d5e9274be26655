"""Helpers the figure notebooks share: read aggregated tables, pick the selected learning rates, draw
the common panel types, and save a figure (PDF + PNG) and its table (CSV) atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .names import COLOURS, LABELS, display_name, entry_name  # noqa: E402
from .io import atomic_write, atomic_write_csv  # noqa: E402

__all__ = [
    "read_tables",
    "read_analyses",
    "selected_runs",
    "final_rows",
    "melt_measures",
    "curves",
    "algorithm_colors",
    "label_colors",
    "save_figure",
    "table_path",
    "flat",
    "display_name",
    "footnote",
    "setup",
]


def setup() -> None:
    sns.set_theme(style="whitegrid", context="paper")


def read_tables(tables: Sequence[str], summaries: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = pd.concat([pd.read_parquet(p) for p in tables], ignore_index=True)
    s = pd.concat([pd.read_csv(p) for p in summaries], ignore_index=True)
    s["name"] = [display_name(a) for a in s["algorithm"]]
    return t, s


def read_analyses(paths: Sequence[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def selected_runs(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of each algorithm entry at its selected learning rate (best mean final accuracy)."""
    sel = summary.loc[summary["selected"], ["experiment", "algo", "lr"]]
    out = table.merge(sel, on=["experiment", "algo", "lr"])
    out["label"] = [f"{entry_name(e, a)} (α={lr:g})" for e, a, lr in zip(out["algo"], out["algorithm"], out["lr"])]
    return out


def final_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of each run: one row per (label, seed)."""
    return runs.sort_values("update").groupby(["label", "seed"]).tail(1)


def melt_measures(df: pd.DataFrame, id_vars: Sequence[str], measures: dict[str, str], var_name: str = "measure",
                  value_name: str = "value") -> pd.DataFrame:
    """Long form of several measure columns: one row per (row, measure), the measure named by
    ``measures`` (column -> name in the legend)."""
    long = df.melt(id_vars=list(id_vars), value_vars=list(measures), var_name=var_name, value_name=value_name)
    long[var_name] = long[var_name].map(measures)
    return long


def algorithm_colors() -> dict[str, object]:
    """One colour per algorithm display name, the same in every figure (:mod:`ilrepro.names`)."""
    spare = iter(sns.color_palette("dark", 10))
    return {display_name(n): COLOURS.get(n) or next(spare) for n in sorted(LABELS)}


def label_colors(df: pd.DataFrame) -> dict[str, object]:
    """Colours for a table's ``label`` column (e.g. 'IL-prox (α=5)') from its ``algorithm`` column; a
    second config entry (``algo``) of an algorithm already coloured takes a spare colour."""
    colors = algorithm_colors()
    spare = iter(["black", "tab:gray", "tab:olive", "tab:pink", "tab:brown", *sns.color_palette("dark", 10)])
    entries = df["algo"] if "algo" in df.columns else df["algorithm"]
    by_entry: dict[tuple[str, str], object] = {}
    for a, e in sorted(set(zip(df["algorithm"], entries)), key=lambda ae: (ae[0], ae[1] != ae[0], ae[1])):
        c = colors[display_name(a)]
        while c in by_entry.values():
            c = next(spare)
        by_entry[(a, e)] = c
    return {lab: by_entry[(a, e)] for lab, a, e in zip(df["label"], df["algorithm"], entries)}


def curves(runs: pd.DataFrame, metric: str, ax: plt.Axes, upto: int | None = None, ylabel: str | None = None) -> None:
    """metric vs update, one line per algorithm (mean ± std over seeds), over the rows that have it (a
    table with a row per update has the test measures only at evaluations); markers only where there
    are at most 200 points per line."""
    data = runs if upto is None else runs[runs["update"] <= upto]
    data = data.dropna(subset=[metric])
    marker = {"marker": "o", "markersize": 2.5} if data["update"].nunique() <= 200 else {}
    sns.lineplot(data=data, x="update", y=metric, hue="label", errorbar="sd", ax=ax, palette=label_colors(data), **marker)
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel or metric.replace("_", " "))
    ax.legend(title=None, fontsize=7)


def footnote(fig: plt.Figure, text: str, y: float = -0.03, fontsize: float = 7, **kw) -> None:
    """A line of small print under the figure (what the error bars are, which runs or analyses it shows)."""
    fig.text(0.01, y, text, fontsize=fontsize, **kw)


def flat(df: pd.DataFrame) -> pd.DataFrame:
    """Flatten (column, statistic) column pairs into 'column_statistic' for a CSV table."""
    if isinstance(df.columns, pd.MultiIndex):
        df = df.copy()
        df.columns = ["_".join(str(p) for p in c if p != "") for c in df.columns]
    return df


def table_path(out_pdf: str) -> str:
    """The CSV table written next to a figure: figures/<name>.csv."""
    return str(Path(out_pdf).with_suffix(".csv"))


def save_figure(fig: plt.Figure, pdf: str, png: str, table: pd.DataFrame | None = None, dpi: int = 150) -> None:
    for path in (pdf, png):
        suffix = Path(path).suffix.lstrip(".")
        kw = {"dpi": dpi} if suffix == "png" else {}
        atomic_write(Path(path), lambda p, kw=kw, suffix=suffix: fig.savefig(p, format=suffix, bbox_inches="tight", **kw))
    if table is not None:
        atomic_write_csv(table, Path(table_path(pdf)))
