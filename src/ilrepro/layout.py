"""Where every file of a pipeline run lives: the one home of the ``results/`` and ``figures/`` layout.

The Snakemake rules, the claims, the bench and the command line ask this module for paths; nothing
else spells one out. Called with wildcard names (``run_file("{exp}", "{algo}", "{lr}", ...)``) a
function gives the rule's pattern; called with values, the file of one job.

    results/runs/<exp>/<algo>/lr<lr>/{metrics.parquet,meta.json}   one training job (every seed)
    results/<exp>/{metrics.parquet,summary.csv}                    one experiment, aggregated
    results/analyses/<name>.{parquet,json}                         one analysis
    results/claims.csv                                             the config's claims, checked
    results/notebooks/<fig>.ipynb, figures/<fig>.{pdf,png,csv}     one figure
    results/bench/, results/performance.csv                        speed
    results/logs/<rule>/..., results/benchmarks/<rule>/...         every job's log and benchmark file

Torch-free, so that the Snakefile and the notebooks can import it cheaply.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RESULTS",
    "FIGURES",
    "FIGURE_EXTS",
    "lr_label",
    "run_dir",
    "run_file",
    "run_benchmark",
    "benchmark_of_run",
    "experiment_table",
    "experiment_summary",
    "analysis_table",
    "analysis_meta",
    "claims_table",
    "figure_file",
    "figure_notebook",
    "notebook_source",
    "bench_dir",
    "bench_files",
    "performance_table",
    "log",
    "benchmark",
]

RESULTS = "results"
FIGURES = "figures"
FIGURE_EXTS = ("pdf", "png")  # the figure targets; every figure also writes its numbers as .csv
RUN_FILES = ("metrics.parquet", "meta.json")


def lr_label(lr: float | str) -> str:
    """The label of a learning rate in run names and paths (``f"{lr:g}"``); a wildcard passes through."""
    return lr if isinstance(lr, str) and lr.startswith("{") else f"{float(lr):g}"


def run_dir(exp: str, algo: str, lr: float | str) -> str:
    return f"{RESULTS}/runs/{exp}/{algo}/lr{lr_label(lr)}"


def run_file(exp: str, algo: str, lr: float | str, name: str) -> str:
    """One file of a training job: ``metrics.parquet`` or ``meta.json``."""
    if name not in RUN_FILES:
        raise ValueError(f"a run has no file '{name}'; it has {', '.join(RUN_FILES)}")
    return f"{run_dir(exp, algo, lr)}/{name}"


def run_benchmark(exp: str, algo: str, lr: float | str) -> str:
    """Snakemake's ``benchmark:`` record of a training job."""
    return benchmark("train", f"{exp}/{algo}/lr{lr_label(lr)}")


def benchmark_of_run(run_path: str | Path) -> Path:
    """The ``benchmark:`` record that belongs to a run's file (:func:`run_file`), wherever the results
    directory is: ``<results>/runs/<exp>/<algo>/lr<lr>/meta.json`` ->
    ``<results>/benchmarks/train/<exp>/<algo>/lr<lr>.tsv``."""
    *head, runs, exp, algo, lr, _name = Path(run_path).parts
    if runs != "runs" or not lr.startswith("lr"):
        raise ValueError(f"{run_path} is not a run's file (expected <results>/runs/<exp>/<algo>/lr<lr>/<file>)")
    return Path(*head) / Path(run_benchmark(exp, algo, lr[2:])).relative_to(RESULTS)


def experiment_table(exp: str) -> str:
    """Every evaluation row of every run of the experiment."""
    return f"{RESULTS}/{exp}/metrics.parquet"


def experiment_summary(exp: str) -> str:
    """One row per (algorithm entry, learning rate), the selected rate marked."""
    return f"{RESULTS}/{exp}/summary.csv"


def analysis_table(name: str) -> str:
    return f"{RESULTS}/analyses/{name}.parquet"


def analysis_meta(name: str) -> str:
    return f"{RESULTS}/analyses/{name}.json"


def claims_table() -> str:
    return f"{RESULTS}/claims.csv"


def figure_file(fig: str, ext: str) -> str:
    """``figures/<fig>.<ext>``: the figure itself (pdf, png) or the numbers it plots (csv)."""
    return f"{FIGURES}/{fig}.{ext}"


def figure_notebook(fig: str) -> str:
    """The executed notebook that drew the figure."""
    return f"{RESULTS}/notebooks/{fig}.ipynb"


def notebook_source(notebook: str) -> str:
    return f"notebooks/{notebook}.ipynb"


def bench_dir() -> str:
    return f"{RESULTS}/bench"


def bench_files(out_dir: str | Path | None = None) -> dict[str, str]:
    """The bench's outputs in ``out_dir`` (default :func:`bench_dir`): every cell, the ratios, and both
    with the metadata as JSON."""
    d = Path(bench_dir() if out_dir is None else out_dir)
    return {"table": str(d / "bench.csv"), "ratios": str(d / "ratios.csv"), "meta": str(d / "bench.json")}


def performance_table() -> str:
    return f"{RESULTS}/performance.csv"


def log(*parts: str) -> str:
    """A job's log: ``log("train", "<exp>/<algo>/lr<lr>")``, ``log("claims")``."""
    return f"{RESULTS}/logs/{'/'.join(parts)}.log"


def benchmark(*parts: str) -> str:
    """A job's Snakemake ``benchmark:`` record, named as its log."""
    return f"{RESULTS}/benchmarks/{'/'.join(parts)}.tsv"
