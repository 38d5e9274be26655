"""The config: read (YAML files merged as Snakemake merges them), validated against the JSON schema that
ships in the package (its defaults filled in), then checked for what a schema cannot express, one check
per section. The Snakefile (workflow/rules/common.smk) and the command line both call
:func:`validate_config`, so a bad config gets the same short error, naming the key, from either.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import yaml

from .algorithms import ALGORITHMS, AlgorithmError, make_algorithm
from .analyses import analysis_params
from .claims import CHECKS
from .data import DATASETS, SIZES
from .layout import lr_label
from .models import ModelError, Net, build_model

__all__ = [
    "ConfigError",
    "ConfigWarning",
    "SCHEMA_PATH",
    "read_yaml",
    "load_config",
    "load_merged_config",
    "validate_config",
    "check_config",
    "check_experiments",
    "check_analyses",
    "check_figures",
    "check_claims",
]

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that cannot be run; the message names the offending key."""


class ConfigWarning(UserWarning):
    """A config that can run but is probably not what was meant (an absurd run length)."""


def validate_config(config: dict[str, Any], schema_path: Path = SCHEMA_PATH, notebooks: Path | None = None) -> dict[str, Any]:
    """Validate against the JSON schema (Snakemake's validator, which fills in the schema's defaults),
    then :func:`check_config` (with the figures' notebooks where ``notebooks``, their folder, is given).
    Returns the config, defaults filled in; raises :class:`ConfigError`."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema_path))
    except WorkflowError as err:
        cause = err.__context__  # Snakemake raises its WorkflowError while handling jsonschema's error
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        where = ".".join(str(p) for p in cause.absolute_path) or "(top level)"
        raise ConfigError(f"config key '{where}': {cause.message}") from None
    check_config(config, notebooks)
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    """One config file; a YAML syntax error names the file, line and column."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{at}: YAML syntax error: {err.problem or err.context}") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of keys (experiments:, figures:, ...), got a {type(data).__name__}")
    return data


def load_config(path: str | Path) -> dict[str, Any]:
    return validate_config(read_yaml(path))


def load_merged_config(paths: list[str | Path], base: str | Path | None = None, notebooks: Path | None = None) -> dict[str, Any]:
    """The config snakemake builds: the Snakefile's own ``configfile`` (``base``) when the command line
    names none, else the ``--configfile PATH ...`` files, each merged recursively on top of the previous
    ones (mappings merge, anything else is replaced); then validated."""
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    for path in list(paths) or ([base] if base is not None else []):
        update_config(config, read_yaml(path))
    return validate_config(config, notebooks=notebooks)


def check_config(config: dict[str, Any], notebooks: Path | None = None) -> None:
    """Checks a JSON schema cannot express, section by section. Raises :class:`ConfigError`."""
    check_experiments(config)
    check_analyses(config)
    check_figures(config, notebooks)
    check_claims(config)


def check_experiments(config: dict[str, Any]) -> None:
    """Data sets, run lengths, and every algorithm entry: known algorithm, its own hyper-parameters,
    a model it supports and can be built on, distinct learning rates."""
    for name, exp in config.get("experiments", {}).items():
        where = f"experiments.{name}"
        if exp["dataset"] not in DATASETS:
            raise ConfigError(f"{where}.dataset: unknown data set '{exp['dataset']}'; known: {', '.join(sorted(DATASETS))}")
        if exp["eval_every"] > exp["updates"]:
            raise ConfigError(f"{where}.eval_every ({exp['eval_every']}) is larger than updates ({exp['updates']})")
        n_train = SIZES[exp["dataset"]].n_train
        if exp["batch_size"] > n_train:
            raise ConfigError(
                f"{where}.batch_size ({exp['batch_size']}) is larger than {exp['dataset']}'s training set ({n_train} examples)"
            )
        for label, entry in exp["algorithms"].items():
            _check_entry(f"{where}.algorithms.{label}", exp, entry)
        _warn_if_absurd(where, exp)


# one training job of more than this many CPU-days (by ilrepro.costs, first attempt) gets a warning
ABSURD_CPU_DAYS = 30


def _warn_if_absurd(where: str, exp: dict[str, Any]) -> None:
    """A run length no one means (``updates: 10**9`` at batch 1000) passes the schema: say so, once per
    algorithm entry, with the cost model's estimate."""
    from .costs import estimate_seconds

    for label, entry in exp["algorithms"].items():
        spec = {**exp, "algorithm": entry["algorithm"], "hparams": entry.get("hparams", {}), "seeds": exp["seeds"], "lrs": entry["lr"]}
        days = estimate_seconds(spec) / 86_400
        if days > ABSURD_CPU_DAYS:
            warnings.warn(
                f"{where}.algorithms.{label}: one training job would take about {days:,.0f} CPU-days "
                f"(updates: {exp['updates']:,}, batch_size: {exp['batch_size']}); is that meant?",
                ConfigWarning,
                stacklevel=2,
            )

def _check_entry(where: str, exp: dict[str, Any], entry: dict[str, Any]) -> None:
    cls = ALGORITHMS.get(entry["algorithm"])
    if cls is None:
        raise ConfigError(f"{where}.algorithm: unknown algorithm '{entry['algorithm']}'; known: {', '.join(sorted(ALGORITHMS))}")
    known_hp = cls.hparam_defaults()
    unknown = set(entry.get("hparams", {})) - set(known_hp)
    if unknown:
        raise ConfigError(
            f"{where}.hparams: '{sorted(unknown)[0]}' is not a hyper-parameter of {cls.name}; "
            f"it takes: {', '.join(sorted(known_hp)) or 'none'}"
        )
    supported = getattr(cls, "supported_models", None)
    model_type = exp["model"].get("type", "mlp")
    if supported is not None and model_type not in supported:
        raise ConfigError(f"{where}.algorithm: {cls.name} does not support model type '{model_type}' (supports: {', '.join(supported)})")
    _check_combination(where, exp, entry, cls)
    labels = [lr_label(lr) for lr in entry["lr"]]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}.lr: duplicate learning rates {entry['lr']}")


@functools.lru_cache(maxsize=None)
def _probe_model(model_json: str, dataset: str, parameterisation: str) -> Net:
    size = SIZES[dataset]
    return build_model(json.loads(model_json), size.image_shape, size.n_classes, parameterisation, 0)  # type: ignore[arg-type]


def _check_combination(where: str, exp: dict[str, Any], entry: dict[str, Any], cls: Any) -> None:
    """Build the experiment's model (shapes only, no data) and the algorithm on it, so that whatever the
    model builder or the algorithm's constructor refuses (CHL without a squared-error output, a bad
    hyper-parameter value, a conv layer too large for the image...) is a config error before any job."""
    try:
        net = _probe_model(json.dumps(exp["model"], sort_keys=True), exp["dataset"], cls.parameterisation)
    except ModelError as exc:
        raise ConfigError(f"{where.rsplit('.algorithms', 1)[0]}.model: {exc}") from None
    try:
        make_algorithm(cls.name, net, float(entry["lr"][0]), entry.get("hparams"))
    except AlgorithmError as exc:
        raise ConfigError(f"{where}.hparams.{exc.key}: {exc}" if exc.key else f"{where}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_analyses(config: dict[str, Any]) -> None:
    """Every analysis names a registered kind and only that kind's parameters."""
    for name, acfg in config.get("analyses", {}).items():
        try:
            analysis_params(acfg["kind"], acfg.get("params", {}))
        except KeyError as exc:
            raise ConfigError(f"analyses.{name}: {exc.args[0]}") from None


def check_figures(config: dict[str, Any], notebooks: Path | None = None) -> None:
    """Every figure draws from experiments and analyses the config has, and from at least one input.
    With ``notebooks`` (the folder of the figures' notebooks): its notebook exists, takes its params,
    and can draw its inputs as the notebook declares (:func:`ilrepro.notebooks.notebook_requirements`)."""
    known = {"experiments": config.get("experiments", {}), "analyses": config.get("analyses", {})}
    for fig, fcfg in config.get("figures", {}).items():
        for key, names in known.items():
            for e in fcfg.get(key, []):
                if e not in names:
                    raise ConfigError(f"figures.{fig}.{key}: '{e}' is not one of the config's {key}; known: {', '.join(sorted(names))}")
        if not fcfg.get("experiments") and not fcfg.get("analyses") and not fcfg.get("files"):
            raise ConfigError(f"figures.{fig}: needs at least one of 'experiments', 'analyses' or 'files'")
        if notebooks is not None:
            _check_notebook(config, fig, fcfg, Path(notebooks))


def _check_notebook(config: dict[str, Any], fig: str, fcfg: dict[str, Any], notebooks: Path) -> None:
    from .notebooks import NotebookError, notebook_parameters, notebook_requirements
    from .train import metrics_columns

    path = notebooks / f"{fcfg['notebook']}.ipynb"
    if not path.is_file():
        have = sorted(p.stem for p in notebooks.glob("*.ipynb"))
        raise ConfigError(f"figures.{fig}.notebook: no notebook {path}; there are: {', '.join(have)}")
    unknown = set(fcfg.get("params", {})) - set(notebook_parameters(path))
    if unknown:
        raise ConfigError(f"figures.{fig}.params: {', '.join(sorted(unknown))} is not a parameter of {path.name}")
    try:
        req = notebook_requirements(path, fcfg.get("params", {}))
    except NotebookError:
        return  # a notebook that declares nothing is not checked further
    for kind in ("experiments", "analyses", "files"):
        listed = fcfg.get(kind, [])
        if kind not in req:
            if listed:
                raise ConfigError(f"figures.{fig}.{kind}: {path.name} draws no {kind} ({req['draws']})")
            continue
        lo, hi = req[kind]["min"], req[kind].get("max", len(listed))
        if not lo <= len(listed) <= hi:
            raise ConfigError(f"figures.{fig}.{kind}: {path.name} draws {lo} to {hi} {kind}, the figure lists {len(listed)}")
    for e in fcfg.get("experiments", []):
        missing = set(req["experiments"].get("columns", [])) - metrics_columns(config["experiments"][e])
        if missing:
            raise ConfigError(
                f"figures.{fig}.experiments: {path.name} plots {', '.join(sorted(missing))}, which experiment '{e}' "
                f"does not record (model type {config['experiments'][e]['model'].get('type', 'mlp')})"
            )
    for a in fcfg.get("analyses", []):
        kind = config["analyses"][a]["kind"]
        if "kinds" in req["analyses"] and kind not in req["analyses"]["kinds"]:
            kinds = ", ".join(req["analyses"]["kinds"])
            raise ConfigError(f"figures.{fig}.analyses: {path.name} draws analyses of kind {kinds}, not '{kind}' ({a})")


def check_claims(config: dict[str, Any]) -> None:
    """Every claim names a known check, exactly one table it reads (an experiment or an analysis of the
    config), and a figure of the config if any."""
    exps, anas = config.get("experiments", {}), config.get("analyses", {})
    for name, c in config.get("claims", {}).items():
        where = f"claims.{name}"
        if c["check"] not in CHECKS:
            raise ConfigError(f"{where}.check: unknown check '{c['check']}'; known: {', '.join(sorted(CHECKS))}")
        p = c["params"]
        if ("experiment" in p) == ("analysis" in p):
            raise ConfigError(f"{where}.params: name exactly one of 'experiment' or 'analysis'")
        if "experiment" in p and p["experiment"] not in exps:
            raise ConfigError(f"{where}.params.experiment: '{p['experiment']}' is not an experiment of the config")
        if "experiment" in p:
            entries = exps[p["experiment"]]["algorithms"]
            for key in ("algo", "baseline"):
                if key in p and p[key] not in entries:
                    raise ConfigError(
                        f"{where}.params.{key}: '{p[key]}' is not an algorithm entry of experiment "
                        f"'{p['experiment']}'; it has: {', '.join(entries)}"
                    )
        if "analysis" in p and p["analysis"] not in anas:
            raise ConfigError(f"{where}.params.analysis: '{p['analysis']}' is not an analysis of the config")
        if c.get("figure") and c["figure"] not in config.get("figures", {}):
            raise ConfigError(f"{where}.figure: '{c['figure']}' is not a figure of the config")
