"""Where every file of a pipeline run lives: the one home of the ``results/`` and ``figures/`` layout.

The Snakemake rules, the claims, the bench and the command line ask this module for paths; nothing
else spells one out. Called with wildcard names (``run_file("{exp}", "{algo}", "{lr}", ...)``) a
function gives the rule's pattern; called with values, the file of one job.

    results/runs/<exp>/<algo>/lr<lr>/{metrics.parquet,meta.json}   one run (every seed of one rate); a
                                                                   training job writes every rate's
    results/<exp>/{metrics.parquet,summary.csv}                    one experiment, aggregated
    results/analyses/<name>.{parquet,json}                         one analysis
    results/claims/<config>.csv                                    one config's claims, checked
    results/notebooks/<fig>.ipynb, figures/<fig>.{pdf,png,csv}     one figure
    results/bench/, results/performance.csv                        speed
    results/logs/<rule>/..., results/benchmarks/<rule>/...         every job's log and benchmark file
                                                                   (training: train/<exp>/<algo>)

Outside the run: built native code under :func:`cache_root` (``$ILREPRO_CACHE``, default
``$XDG_CACHE_HOME/ilrepro`` or ``~/.cache/ilrepro``), one folder per kind (``torch_extensions/``,
``mkl_vendor/``).

Torch-free, so that the Snakefile and the notebooks can import it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "cache_root",
    "RESULTS",
    "FIGURES",
    "FIGURE_EXTS",
    "PERFORMANCE",
    "BENCH_DIR",
    "NOTEBOOKS",
    "lr_label",
    "run_dir",
    "run_file",
    "job_log",
    "job_benchmark",
    "benchmark_of_run",
    "experiment_file",
    "analysis_file",
    "figure_file",
    "notebook_file",
    "claims_file",
    "config_name",
    "bench_files",
    "log",
    "benchmark",
]


def cache_root() -> Path:
    """Where machine-specific builds are kept between runs and checkouts (never inside the repository)."""
    root = os.environ.get("ILREPRO_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ilrepro")
    return Path(root)


RESULTS = "results"
FIGURES = "figures"
FIGURE_EXTS = ("pdf", "png")  # the figure targets; every figure also writes its numbers as .csv
RUN_FILES = ("metrics.parquet", "meta.json")
EXPERIMENT_FILES = ("metrics.parquet", "summary.csv")


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


def job_log(exp: str, algo: str) -> str:
    """The log of a training job (one algorithm entry: every learning rate x seed)."""
    return log("train", f"{exp}/{algo}")


def job_benchmark(exp: str, algo: str) -> str:
    """Snakemake's ``benchmark:`` record of a training job (one algorithm entry)."""
    return benchmark("train", f"{exp}/{algo}")


def benchmark_of_run(run_path: str | Path) -> Path:
    """The ``benchmark:`` record of the job that wrote a run's file (:func:`run_file`), wherever the
    results directory is: ``<results>/runs/<exp>/<algo>/lr<lr>/meta.json`` ->
    ``<results>/benchmarks/train/<exp>/<algo>.tsv`` (the whole job's: every rate of the entry)."""
    *head, runs, exp, algo, lr, _name = Path(run_path).parts
    if runs != "runs" or not lr.startswith("lr"):
        raise ValueError(f"{run_path} is not a run's file (expected <results>/runs/<exp>/<algo>/lr<lr>/<file>)")
    return Path(*head) / Path(job_benchmark(exp, algo)).relative_to(RESULTS)


def experiment_file(exp: str, name: str) -> str:
    """One experiment's aggregated tables: ``metrics.parquet`` (every evaluation row of every run) or
    ``summary.csv`` (one row per algorithm entry and learning rate, the selected rate marked)."""
    if name not in EXPERIMENT_FILES:
        raise ValueError(f"an experiment has no file '{name}'; it has {', '.join(EXPERIMENT_FILES)}")
    return f"{RESULTS}/{exp}/{name}"


def analysis_file(name: str, ext: str) -> str:
    """One analysis: its table (``parquet``) or its metadata (``json``)."""
    if ext not in ("parquet", "json"):
        raise ValueError(f"an analysis has no '.{ext}' file; it has .parquet and .json")
    return f"{RESULTS}/analyses/{name}.{ext}"


def figure_file(fig: str, ext: str) -> str:
    """``figures/<fig>.<ext>``: the figure itself (pdf, png), the numbers it plots (csv), or the executed
    notebook that drew it (ipynb, under results/notebooks/)."""
    if ext == "ipynb":
        return f"{RESULTS}/notebooks/{fig}.ipynb"
    if ext not in (*FIGURE_EXTS, "csv"):
        raise ValueError(f"a figure has no '.{ext}' file; it has .pdf, .png, .csv and .ipynb")
    return f"{FIGURES}/{fig}.{ext}"


def claims_file(config_name: str) -> str:
    """The claims of one config, checked: ``results/claims/<config>.csv``, where ``<config>`` names the
    config file(s) run (:func:`config_name`), so that running one config never overwrites another's."""
    return f"{RESULTS}/claims/{config_name}.csv"


def config_name(configfiles: list[str | Path]) -> str:
    """The name of a run's config: its files' stems (``paper``; ``paper+mine`` for two merged)."""
    return "+".join(Path(f).stem for f in configfiles) or "config"


def notebook_file(notebook: str) -> str:
    """A notebook's source, ``notebooks/<notebook>.ipynb`` (a figure's config names it)."""
    return f"{NOTEBOOKS}/{notebook}.ipynb"


# files of the whole run, and the notebooks' folder
PERFORMANCE = f"{RESULTS}/performance.csv"
BENCH_DIR = f"{RESULTS}/bench"
NOTEBOOKS = "notebooks"


def bench_files(out_dir: str | Path | None = None) -> dict[str, str]:
    """The bench's outputs in ``out_dir`` (default :data:`BENCH_DIR`): every cell, the ratios, and both
    with the metadata as JSON."""
    d = Path(BENCH_DIR if out_dir is None else out_dir)
    return {"table": str(d / "bench.csv"), "ratios": str(d / "ratios.csv"), "meta": str(d / "bench.json")}


def performance_table() -> str:
    return f"{RESULTS}/performance.csv"


def log(*parts: str) -> str:
    """A job's log: ``log("train", "<exp>/<algo>/lr<lr>")``, ``log("claims")``."""
    return f"{RESULTS}/logs/{'/'.join(parts)}.log"


def benchmark(*parts: str) -> str:
    """A job's Snakemake ``benchmark:`` record, named as its log."""
    return f"{RESULTS}/benchmarks/{'/'.join(parts)}.tsv"
