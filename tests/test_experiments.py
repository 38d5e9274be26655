"""The run table: one run per (experiment, entry, rate), one training job per (experiment, entry)."""

from __future__ import annotations

import copy
from pathlib import Path

from ilrepro.config import load_merged_config
from ilrepro.experiments import job_spec, jobs, run_spec, runs

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_merged_config([], base=REPO / "config/config.yaml")


def test_a_job_is_an_entry_with_every_rate_and_seed():
    js = jobs(CONFIG, "alonso_e1_b1")
    assert [j.algo for j in js] == ["bp_sgd", "il_sgd", "il_prox", "bp_prox"]
    assert js[0].lrs == ("0.01", "0.1", "1", "2.5", "10", "100") and js[0].seeds == (0, 1)
    assert [r for j in js for r in j.runs] == runs(CONFIG, "alonso_e1_b1")
    assert js[0].files("meta.json")[0] == "results/runs/alonso_e1_b1/bp_sgd/lr0.01/meta.json"
    spec = job_spec(CONFIG, "alonso_e1_b1", "il_prox")
    assert spec["lrs"] == [0.01, 0.1, 1.0, 2.5, 10.0, 100.0] and "lr" not in spec and spec["seeds"] == [0, 1]
    one = run_spec(CONFIG, "alonso_e1_b1", "il_prox", "2.5")
    assert {k: v for k, v in spec.items() if k != "lrs"} == {k: v for k, v in one.items() if k != "lr"}


def test_stack_key_and_its_old_name_reach_the_spec():
    cfg = copy.deepcopy(CONFIG)
    cfg["experiments"]["alonso_e1_b1"]["stack"] = False
    cfg["experiments"]["alonso_e1_b64"]["vectorise_seeds"] = True
    assert job_spec(cfg, "alonso_e1_b1", "bp_sgd")["stack"] is False
    assert job_spec(cfg, "alonso_e1_b64", "bp_sgd")["stack"] is True
    assert "stack" not in job_spec(CONFIG, "alonso_e1_b1", "bp_sgd")
