"""Config -> run table: the single source that the Snakefile and the command line both read (the config
itself is read and checked in :mod:`ilrepro.config`; where a run's files live, :mod:`ilrepro.layout`).

A run is identified by (experiment, algo, lr): ``algo`` is the label of an algorithm entry in the
experiment (several entries may use the same algorithm with other hyper-parameters), ``lr`` the label of
one learning rate from that entry's list (``f"{lr:g}"``); it holds every seed of the experiment, and has
its own files (``metrics.parquet``, ``meta.json``). A training *job* (:class:`Job`) is one algorithm entry:
every learning rate x every seed, in one process and, where the algorithm allows (and it pays,
:func:`ilrepro.train.stack_members`), as one stacked model (:mod:`ilrepro.ensemble`); it writes the files
of all its runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from . import layout
from .analyses import analysis_params
from .config import ConfigError
from .layout import lr_label

__all__ = ["Run", "Job", "RUN_KEYS", "runs", "jobs", "run_spec", "job_spec", "analysis_spec"]

RUN_KEYS = ("dataset", "model", "batch_size", "updates", "eval_every", "device", "dtype", "track_bp_cosine", "track_path_length",
            "keep_first_layer")


@dataclass(frozen=True)
class Run:
    experiment: str
    algo: str
    lr: str
    seeds: tuple[int, ...]

    @property
    def dir(self) -> str:
        return layout.run_dir(self.experiment, self.algo, self.lr)

    def file(self, name: str) -> str:
        """``metrics.parquet`` or ``meta.json`` of this run (:func:`ilrepro.layout.run_file`)."""
        return layout.run_file(self.experiment, self.algo, self.lr, name)


@dataclass(frozen=True)
class Job:
    """One training job: an algorithm entry of an experiment, every learning rate (labels, in the
    entry's order) x every seed."""

    experiment: str
    algo: str
    lrs: tuple[str, ...]
    seeds: tuple[int, ...]

    @property
    def runs(self) -> list[Run]:
        return [Run(self.experiment, self.algo, lr, self.seeds) for lr in self.lrs]

    def files(self, name: str) -> list[str]:
        """``metrics.parquet`` or ``meta.json`` of each of its runs, in the order of :attr:`lrs`."""
        return [r.file(name) for r in self.runs]


def jobs(config: dict[str, Any], experiment: str | None = None) -> list[Job]:
    """Every training job of the config (or of one experiment), in the order of :func:`runs`."""
    out: list[Job] = []
    for name, exp in config["experiments"].items():
        if experiment is not None and name != experiment:
            continue
        for label, entry in exp["algorithms"].items():
            out.append(Job(name, label, tuple(lr_label(lr) for lr in entry["lr"]), tuple(int(s) for s in exp["seeds"])))
    return out


def runs(config: dict[str, Any], experiment: str | None = None) -> list[Run]:
    """Every run of the config (or of one experiment), in a stable order."""
    return [r for j in jobs(config, experiment) for r in j.runs]


def analysis_spec(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The full description of one analysis job: its kind, parameters (defaults filled in) and settings."""
    if name not in config.get("analyses", {}):
        raise ConfigError(f"no analysis '{name}' in the config; known: {', '.join(sorted(config.get('analyses', {})))}")
    a = config["analyses"][name]
    defaults = config.get("defaults", {})
    return {
        "analysis": name,
        "kind": a["kind"],
        "params": analysis_params(a["kind"], copy.deepcopy(a.get("params", {}))),
        "device": a.get("device", defaults.get("device", "cpu")),
        "data": copy.deepcopy(config.get("data", {})),
        **({"runtime_min": int(a["runtime_min"])} if "runtime_min" in a else {}),
    }


def run_spec(config: dict[str, Any], experiment: str, algo: str, lr: str, seed: int | None = None) -> dict[str, Any]:
    """The full, self-contained description of one run: what ``ilrepro train`` reads. All of the
    experiment's seeds (``seeds``), or just ``seed``."""
    try:
        exp = config["experiments"][experiment]
        entry = exp["algorithms"][algo]
    except KeyError as exc:
        raise ConfigError(f"no experiment '{experiment}' with algorithm entry '{algo}' in the config") from exc
    lrs = {lr_label(x): float(x) for x in entry["lr"]}
    if lr not in lrs:
        raise ConfigError(f"experiments.{experiment}.algorithms.{algo}.lr has no learning rate {lr}; it has {sorted(lrs)}")
    if seed is not None and int(seed) not in [int(s) for s in exp["seeds"]]:
        raise ConfigError(f"experiments.{experiment}.seeds has no seed {seed}")
    defaults = config.get("defaults", {})
    spec: dict[str, Any] = {k: copy.deepcopy(exp[k]) for k in RUN_KEYS if k in exp}
    for k in ("device", "dtype"):
        spec.setdefault(k, defaults.get(k, {"device": "cpu", "dtype": "float32"}[k]))
    spec.update(
        experiment=experiment,
        algo=algo,
        algorithm=entry["algorithm"],
        lr=lrs[lr],
        hparams=copy.deepcopy(entry.get("hparams", {})),
        data=copy.deepcopy(config.get("data", {})),
    )
    if seed is None:
        spec["seeds"] = [int(s) for s in exp["seeds"]]
    else:
        spec["seed"] = int(seed)
    if "stack" in exp or "vectorise_seeds" in exp:  # vectorise_seeds: the key's old name, still read
        spec["stack"] = exp.get("stack", exp.get("vectorise_seeds"))
    if "pixel_range" in exp:  # an experiment may rescale its pixels differently from the config's data
        spec["data"]["pixel_range"] = list(exp["pixel_range"])
    return spec



def job_spec(config: dict[str, Any], experiment: str, algo: str) -> dict[str, Any]:
    """The full description of one training job (:class:`Job`): :func:`run_spec` with every learning
    rate of the entry (``lrs``, in its order) in place of one ``lr``."""
    try:
        entry = config["experiments"][experiment]["algorithms"][algo]
    except KeyError as exc:
        raise ConfigError(f"no experiment '{experiment}' with algorithm entry '{algo}' in the config") from exc
    spec = run_spec(config, experiment, algo, lr_label(entry["lr"][0]))
    del spec["lr"]
    spec["lrs"] = [float(x) for x in entry["lr"]]
    return spec
