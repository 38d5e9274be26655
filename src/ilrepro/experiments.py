"""Config -> run table: the single source that the Snakefile and the command line both read.

A run is identified by (experiment, algo, lr): ``algo`` is the label of an algorithm entry in the
experiment (several entries may use the same algorithm with other hyper-parameters), ``lr`` the label of
one learning rate from that entry's list (``f"{lr:g}"``). A run trains every seed of the experiment, in
one process and, where the algorithm allows, as one vectorised model (:mod:`ilrepro.ensemble`).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .algorithms import ALGORITHMS, AlgorithmError, make_algorithm
from .analyses import analysis_params
from .claims import CHECKS
from .data import DATASETS, SHAPES
from .models import ModelError, Net, build_model

__all__ = [
    "ConfigError",
    "Run",
    "SCHEMA_PATH",
    "lr_label",
    "load_config",
    "load_merged_config",
    "validate_config",
    "check_config",
    "runs",
    "run_spec",
    "analysis_spec",
    "run_dir",
]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
RUN_KEYS = ("dataset", "model", "batch_size", "updates", "eval_every", "device", "dtype", "track_bp_cosine", "track_path_length")


class ConfigError(ValueError):
    """A config that cannot be run; the message names the offending key."""


@dataclass(frozen=True)
class Run:
    experiment: str
    algo: str
    lr: str
    seeds: tuple[int, ...]

    @property
    def dir(self) -> str:
        return run_dir(self.experiment, self.algo, self.lr)


def lr_label(lr: float) -> str:
    return f"{float(lr):g}"


def run_dir(experiment: str, algo: str, lr: str) -> str:
    return f"results/runs/{experiment}/{algo}/lr{lr}"


def validate_config(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate against the JSON schema (filling in its defaults), then :func:`check_config`.
    The Snakefile uses ``snakemake.utils.validate`` with the same schema file instead of the first half."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    extended = jsonschema.validators.extend(validator_cls, {"properties": _set_defaults(validator_cls)})
    errors = sorted(extended(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{where}': {e.message}")
    check_config(config)
    return config


def _set_defaults(validator_cls: Any) -> Any:
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Any:
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from validate_props(validator, properties, instance, schema)

    return set_defaults


def load_config(path: str | Path) -> dict[str, Any]:
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config)


def load_merged_config(paths: list[str | Path], base: str | Path | None = None) -> dict[str, Any]:
    """The config snakemake builds: the Snakefile's own ``configfile`` (``base``) when the command line
    names none, else the ``--configfile PATH ...`` files, each merged recursively on top of the previous
    ones (mappings merge, anything else is replaced); then validated."""
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    for path in list(paths) or ([base] if base is not None else []):
        with open(path) as fh:
            update_config(config, yaml.safe_load(fh) or {})
    return validate_config(config)


def check_config(config: dict[str, Any]) -> None:
    """Checks a JSON schema cannot express: algorithm hyper-parameters, figure -> experiment links,
    algorithm/model combinations. Raises :class:`ConfigError` naming the key."""
    exps = config.get("experiments", {})
    for name, exp in exps.items():
        where = f"experiments.{name}"
        if exp["dataset"] not in DATASETS:
            raise ConfigError(f"{where}.dataset: unknown data set '{exp['dataset']}'; known: {', '.join(sorted(DATASETS))}")
        if exp["eval_every"] > exp["updates"]:
            raise ConfigError(f"{where}.eval_every ({exp['eval_every']}) is larger than updates ({exp['updates']})")
        for label, entry in exp["algorithms"].items():
            aw = f"{where}.algorithms.{label}"
            cls = ALGORITHMS.get(entry["algorithm"])
            if cls is None:
                raise ConfigError(f"{aw}.algorithm: unknown algorithm '{entry['algorithm']}'; known: {', '.join(sorted(ALGORITHMS))}")
            known_hp = cls.hparam_defaults()
            unknown = set(entry.get("hparams", {})) - set(known_hp)
            if unknown:
                raise ConfigError(
                    f"{aw}.hparams: '{sorted(unknown)[0]}' is not a hyper-parameter of {cls.name}; "
                    f"it takes: {', '.join(sorted(known_hp)) or 'none'}"
                )
            _check_combination(aw, exp, entry, cls)
            supported = getattr(cls, "supported_models", None)
            if supported is not None and exp["model"].get("type", "mlp") not in supported:
                raise ConfigError(
                    f"{aw}.algorithm: {cls.name} does not support model type '{exp['model'].get('type', 'mlp')}' "
                    f"(supports: {', '.join(supported)})"
                )
            labels = [lr_label(lr) for lr in entry["lr"]]
            if len(set(labels)) != len(labels):
                raise ConfigError(f"{aw}.lr: duplicate learning rates {entry['lr']}")
    for name, acfg in config.get("analyses", {}).items():
        try:
            analysis_params(acfg["kind"], acfg.get("params", {}))
        except KeyError as exc:
            raise ConfigError(f"analyses.{name}: {exc.args[0]}") from None
    for fig, fcfg in config.get("figures", {}).items():
        for key, known in (("experiments", exps), ("analyses", config.get("analyses", {}))):
            for e in fcfg.get(key, []):
                if e not in known:
                    raise ConfigError(f"figures.{fig}.{key}: '{e}' is not one of the config's {key}; known: {', '.join(sorted(known))}")
        if not fcfg.get("experiments") and not fcfg.get("analyses") and not fcfg.get("files"):
            raise ConfigError(f"figures.{fig}: needs at least one of 'experiments', 'analyses' or 'files'")
    for name, c in config.get("claims", {}).items():
        where = f"claims.{name}"
        if c["check"] not in CHECKS:
            raise ConfigError(f"{where}.check: unknown check '{c['check']}'; known: {', '.join(sorted(CHECKS))}")
        p = c["params"]
        if ("experiment" in p) == ("analysis" in p):
            raise ConfigError(f"{where}.params: name exactly one of 'experiment' or 'analysis'")
        if "experiment" in p and p["experiment"] not in exps:
            raise ConfigError(f"{where}.params.experiment: '{p['experiment']}' is not an experiment of the config")
        if "analysis" in p and p["analysis"] not in config.get("analyses", {}):
            raise ConfigError(f"{where}.params.analysis: '{p['analysis']}' is not an analysis of the config")
        if c.get("figure") and c["figure"] not in config.get("figures", {}):
            raise ConfigError(f"{where}.figure: '{c['figure']}' is not a figure of the config")


@functools.lru_cache(maxsize=None)
def _probe_model(model_json: str, dataset: str, parameterisation: str) -> Net:
    shape, classes = SHAPES[dataset]
    return build_model(json.loads(model_json), shape, classes, parameterisation, 0)  # type: ignore[arg-type]


def _check_combination(where: str, exp: dict[str, Any], entry: dict[str, Any], cls: Any) -> None:
    """Build the experiment's model (shapes only, no data) and the algorithm on it, so that whatever the
    model builder or the algorithm's constructor refuses (CHL without a squared-error output, a bad
    hyper-parameter value, a conv layer too large for the image...) is a config error before any job."""
    if supported := getattr(cls, "supported_models", None):
        if exp["model"].get("type", "mlp") not in supported:
            return  # reported below with its own message
    try:
        net = _probe_model(json.dumps(exp["model"], sort_keys=True), exp["dataset"], cls.parameterisation)
    except ModelError as exc:
        raise ConfigError(f"{where.rsplit('.algorithms', 1)[0]}.model: {exc}") from None
    try:
        make_algorithm(cls.name, net, float(entry["lr"][0]), entry.get("hparams"))
    except (AlgorithmError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def runs(config: dict[str, Any], experiment: str | None = None) -> list[Run]:
    """Every run of the config (or of one experiment), in a stable order."""
    out: list[Run] = []
    for name, exp in config["experiments"].items():
        if experiment is not None and name != experiment:
            continue
        for label, entry in exp["algorithms"].items():
            for lr in entry["lr"]:
                out.append(Run(name, label, lr_label(lr), tuple(int(s) for s in exp["seeds"])))
    return out


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
    if "vectorise_seeds" in exp:
        spec["vectorise"] = exp["vectorise_seeds"]
    if "pixel_range" in exp:  # an experiment may rescale its pixels differently from the config's data
        spec["data"]["pixel_range"] = list(exp["pixel_range"])
    return spec

