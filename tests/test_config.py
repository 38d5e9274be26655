"""Config validation: the schema and the semantic checks reject bad input with a message naming the key."""

from __future__ import annotations

import copy

import pytest
from conftest import small_config

from ilrepro.config import ConfigError, validate_config
from ilrepro.experiments import run_spec, runs
from ilrepro.layout import lr_label

BASE = small_config()


def _bad(path: list[str], value) -> dict:
    c = copy.deepcopy(BASE)
    node = c
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value
    return c


def test_valid_config_gets_defaults():
    c = validate_config(copy.deepcopy(BASE))
    assert c["defaults"] == {"device": "cpu", "dtype": "float32", "threads": 1}
    assert c["data"]["download"] is False
    assert len(runs(c)) == 3 and {r.seeds for r in runs(c)} == {(0, 1)}  # one run per lr, all seeds
    spec = run_spec(c, "e", "il", "0.05")
    assert spec["hparams"] == {"T": 5} and spec["algorithm"] == "il_sgd" and spec["lr"] == 0.05
    assert spec["seeds"] == [0, 1] and "seed" not in spec
    assert run_spec(c, "e", "il", "0.05", 1)["seed"] == 1 and "seeds" not in run_spec(c, "e", "il", "0.05", 1)


@pytest.mark.parametrize(
    "path,value,message",
    [
        (["experiments", "e", "updatez"], 3, r"'experiments.e'.*'updatez' was unexpected"),
        (["experiments", "e", "updates"], "many", r"'experiments.e.updates'.*not of type 'integer'"),
        (["experiments", "e", "dataset"], "mnsit", r"'experiments.e.dataset'.*'mnsit' is not one of"),
        (["experiments", "e", "model", "hiden"], [3], r"'experiments.e.model'.*'hiden' was unexpected"),
        (["experiments", "e", "algorithms", "bp", "lr"], 0.1, r"'experiments.e.algorithms.bp.lr'.*not of type 'array'"),
        (["experiments", "e", "algorithms", "bp", "algorithm"], "bp_sdg", r"experiments.e.algorithms.bp.algorithm: unknown algorithm 'bp_sdg'"),
        (["experiments", "e", "algorithms", "il", "hparams"], {"TT": 3}, r"experiments.e.algorithms.il.hparams: 'TT' is not a hyper-parameter of il_sgd"),
        (["experiments", "e", "eval_every"], 1000, r"experiments.e.eval_every \(1000\) is larger than updates"),
        (["figures", "f", "experiments"], ["nope"], r"figures.f.experiments: 'nope' is not one of the config's experiments"),
        (["defaults", "device"], "tpu", r"'defaults.device'.*'tpu' is not one of"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_bad(path, value))


def test_lr_labels_round_trip():
    for lr in (0.015, 1e-4, 2.5, 100, 5e-6):
        assert float(lr_label(lr)) == lr


@pytest.mark.parametrize(
    "model,algorithm,hparams,message",
    [
        ({"type": "mlp", "hidden": [8]}, "chl", {}, r"experiments.e.algorithms.x: chl: .*output_loss: mse"),
        ({"type": "cnn", "channels": [4], "kernels": [3]}, "eqprop", {}, r"experiments.e.algorithms.x.algorithm: eqprop does not support model type 'cnn'"),
        ({"type": "rnn", "hidden": [8]}, "il_prox", {}, r"experiments.e.algorithms.x.algorithm: il_prox does not support model type 'rnn'"),
        ({"type": "cnn", "channels": [4, 4], "kernels": [5, 5], "strides": [2, 2]}, "bp_sgd", {}, r"experiments.e.model: .*no spatial extent"),
        ({"type": "mlp", "hidden": [8], "output_loss": "mse"}, "eqprop", {"estimator": "sideways"}, r"experiments.e.algorithms.x.hparams.estimator: eqprop: .*estimator.*must be one of"),
    ],
)
def test_impossible_combination_is_rejected_before_any_job(model, algorithm, hparams, message):
    c = copy.deepcopy(BASE)
    c["experiments"]["e"]["model"] = model
    c["experiments"]["e"]["algorithms"] = {"x": {"algorithm": algorithm, "lr": [0.1], "hparams": hparams}}
    with pytest.raises(ConfigError, match=message):
        validate_config(c)
