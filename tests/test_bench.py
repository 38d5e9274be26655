"""The training-speed benchmark: every cell timed or skipped with a reason, ratios, files, job table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ilrepro.bench import bench, ratios, training_performance
from ilrepro.cli import main

TINY = {
    "dataset": "digits",
    "models": ["mlp", "rnn_not_a_model"],
    "model_overrides": {"mlp": {"hidden": [8]}},
    "algorithms": ["bp_sgd", "il_sgd", "no_such_algorithm"],
    "batch_sizes": [1, 4],
    "updates": 6,
    "eval_every": 3,
    "hparams": {"il_sgd": {"T": 2}},
}


def test_bench_times_registered_cells_and_records_why_others_are_skipped():
    table, ratio, meta = bench(TINY, log=None)
    assert len(table) == 2 * 2 * 3
    ok = table[table["status"] == "ok"]
    assert set(ok["model"]) == {"mlp"} and set(ok["algorithm"]) == {"bp_sgd", "il_sgd"} and len(ok) == 4
    assert (ok["updates"] == 6).all() and (ok["n_evals"] == 2).all()
    assert (ok["updates_per_s"] > 0).all() and (ok["train_updates_per_s"] >= ok["updates_per_s"]).all()
    assert ((ok["ms_per_update"] * ok["updates_per_s"] - 1e3).abs() < 1e-6).all()
    assert (ok["peak_rss_mb"] > 0).all()
    skipped = table[table["status"] == "skipped"]
    assert skipped[skipped["algorithm"] == "no_such_algorithm"]["reason"].str.contains("not registered").all()
    assert skipped[skipped["model"] == "rnn_not_a_model"]["reason"].str.contains("unknown model type").any()
    # IL-SGD / BP-SGD, per model and batch size, from the update steps alone
    assert sorted(ratio["batch_size"]) == [1, 4] and set(ratio["ratio"]) == {"il_sgd/bp_sgd"}
    b1 = ok[ok["batch_size"] == 1].set_index("algorithm")["train_ms_per_update"]
    assert ratio[ratio["batch_size"] == 1]["value"].item() == pytest.approx(b1["il_sgd"] / b1["bp_sgd"])
    assert meta["dataset"] == "digits" and meta["threads"] == 1 and meta["hardware"]


def test_ratios_only_where_both_ran():
    t = pd.DataFrame(
        {"model": ["mlp"] * 3, "batch_size": [64] * 3, "algorithm": ["bp_sgd", "zil", "il_sgd"],
         "status": ["ok", "ok", "skipped"], "train_ms_per_update": [2.0, 2.2, float("nan")]}
    )
    r = ratios(t)
    assert r.to_dict(orient="records") == [{"model": "mlp", "batch_size": 64, "ratio": "zil/bp_sgd", "value": pytest.approx(1.1)}]


def test_seed_speedup_is_model_updates_per_second_over_one_seeds():
    t = pd.DataFrame(
        {"model": ["mlp"] * 4, "batch_size": [1] * 4, "algorithm": ["bp_sgd", "bp_sgd", "il_sgd", "il_sgd"],
         "seeds": [1, 5, 1, 5], "status": ["ok"] * 4, "train_ms_per_update": [1.0, 0.5, 4.0, 1.0],
         "updates_per_s": [100.0, 250.0, 20.0, 60.0]}
    )
    got = {r["ratio"]: r["value"] for r in ratios(t).to_dict(orient="records")}
    assert got == {"il_sgd/bp_sgd": pytest.approx(4.0), "5 seeds/1 (bp_sgd)": pytest.approx(2.5), "5 seeds/1 (il_sgd)": pytest.approx(3.0)}


def test_bench_rejects_unknown_keys():
    with pytest.raises(ValueError, match="updatez"):
        bench({"updatez": 3}, log=None)


def test_cli_writes_table_ratios_and_metadata(tmp_path):
    cfg = {**TINY, "models": ["mlp"], "algorithms": ["bp_sgd"], "batch_sizes": [2]}
    assert main(["bench", "--config", json.dumps(cfg), "--out-dir", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "bench.csv")
    assert table["status"].tolist() == ["ok"]
    meta = json.loads((tmp_path / "bench.json").read_text())
    assert meta["rows"][0]["algorithm"] == "bp_sgd" and "versions" in meta and meta["config"]["updates"] == 6
    assert (tmp_path / "ratios.csv").exists()


def test_training_performance_reads_meta_and_snakemake_benchmark(tmp_path):
    run = tmp_path / "results" / "runs" / "e2" / "il" / "lr0.1"
    run.mkdir(parents=True)
    spec = {"experiment": "e2", "algo": "il", "algorithm": "il_sgd", "lr": 0.1, "seeds": [3, 4], "dataset": "digits",
            "model": {"type": "mlp"}, "batch_size": 1}
    (run / "meta.json").write_text(json.dumps({"spec": spec, "status": "ok", "updates_done": 100, "wall_s": 2.0,
                                               "updates_per_s": 80.0, "hardware": "cpu", "vectorised": True}))
    tsv = tmp_path / "results" / "benchmarks" / "train" / "e2" / "il.tsv"  # the job of the entry: every rate
    tsv.parent.mkdir(parents=True)
    tsv.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                   "3.5\t0:00:03\t210.5\t900\t200\t205\t0\t1\t90\t3.1\n")
    other = tmp_path / "results" / "runs" / "e2" / "bp" / "lr0.1"
    other.mkdir(parents=True)
    (other / "meta.json").write_text(json.dumps({"spec": {**spec, "algo": "bp"}, "status": "ok", "updates_done": 100}))
    t = training_performance([run / "meta.json", other / "meta.json"])
    first = t.iloc[0]
    assert (first["algo"], first["batch_size"], first["updates"], first["train_updates_per_s"]) == ("il", 1, 100, 80.0)
    assert (first["seeds"], first["vectorised"]) == (2, True)
    assert (first["job_s"], first["cpu_s"], first["max_rss_mb"]) == (3.5, 3.1, 210.5)
    assert pd.isna(t.iloc[1]["job_s"])  # no benchmark file: recorded as missing, not an error


def test_sweep_bench_times_one_stacked_job_per_algorithm(tmp_path):
    # the GPU benchmark of issue 17, run small on a CPU: one job per algorithm entry, every rate x seed
    assert main(["sweep-bench", "--out-dir", str(tmp_path), "--config", json.dumps(
        {"configfile": "config/tiny.yaml", "experiment": "alonso_e2_digits", "algorithms": ["il_sgd"], "updates": 3,
         "device": "cpu", "eager_too": []})]) == 0
    table = pd.read_csv(tmp_path / "sweep_bench.csv")
    row = table.iloc[0]
    assert (row["algorithm"], row["members"], row["updates"]) == ("il_sgd", 4, 3)
    assert row["train_updates_per_s"] > 0 and row["minutes_per_sweep"] > 0
    assert "calibrated" not in json.loads((tmp_path / "sweep_bench.json").read_text())  # GPU only
