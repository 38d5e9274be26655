"""The cluster resource estimate (ilrepro.plan) and that the rules ask for exactly its numbers."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from ilrepro import costs, first_layer, native, plan
from ilrepro.cli import main
from ilrepro.config import load_merged_config
from ilrepro.experiments import job_spec, jobs, runs

REPO = Path(__file__).resolve().parents[1]


def spec(**kw) -> dict:
    base = {"dataset": "mnist", "model": {"type": "mlp", "hidden": [256, 256]}, "algorithm": "bp_sgd",
            "batch_size": 1, "updates": 50_000, "eval_every": 50, "device": "cpu", "threads": 1, "seed": 0}
    return {**base, **kw}


def test_flops_of_an_mlp_are_twice_its_multiply_adds():
    m = costs.model_cost({"type": "mlp", "hidden": [256, 256]}, "mnist")
    assert m.flops == 2 * (784 * 256 + 256 * 256 + 256 * 10)
    assert m.n_params == (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
    assert m.n_layers == 3


def test_passes_follow_the_inference_steps():
    assert costs.passes_per_update("bp_sgd") == 3
    assert costs.passes_per_update("il_sgd") == 2 * (25 + 1) + 2  # il_sgd's default T
    assert costs.passes_per_update("il_sgd", {"T": 5}) == 14


def test_run_time_grows_with_the_work():
    base = costs.estimate_seconds(spec())
    start = costs.COSTS["cpu"].startup_s
    double = costs.estimate_seconds(spec(updates=100_000))
    assert double - start == pytest.approx(2 * (base - start), rel=0.01)
    train_only = costs.estimate_seconds(spec(eval_every=50_000))
    assert costs.estimate_seconds(spec(algorithm="il_sgd", eval_every=50_000)) - start > 1.5 * (train_only - start)
    assert costs.estimate_seconds(spec(dataset="cifar10", model={"type": "mlp", "hidden": [1024] * 3})) > 2 * base
    assert costs.estimate_seconds(spec(batch_size=64)) > base
    # a job's members (rates x seeds) one by one: each pays the whole cost
    assert costs.estimate_seconds(spec(seeds=[0, 1, 2])) - start == pytest.approx(3 * (base - start))
    assert costs.estimate_seconds(spec(seeds=[0, 1, 2], lrs=[0.1, 1.0], stack=False)) - start == pytest.approx(6 * (base - start))
    # stacked, they share a step's overhead: less than one by one where overhead dominates (B=1)
    small = spec(dataset="digits", model={"type": "cnn", "channels": [4], "kernels": [3]}, algorithm="il_sgd")  # no native path
    one_by_one = costs.estimate_seconds({**small, "seeds": [0, 1, 2], "lrs": [0.1, 1.0], "stack": False})
    # (6 members share a step overhead of 3 plain ones; their FLOPs and evaluations are their own)
    assert costs.estimate_seconds({**small, "seeds": [0, 1, 2], "lrs": [0.1, 1.0]}) < 0.7 * one_by_one  # auto: stacked
    assert costs.members_of(spec(seeds=[0, 1, 2], lrs=[0.1, 1.0])) == 6
    # where the native path serves each member alone (an MLP), auto plans them one by one
    mlp = spec(dataset="digits", model={"type": "mlp", "hidden": [64, 64]}, algorithm="il_sgd")
    assert costs.estimate_seconds({**mlp, "seeds": [0, 1, 2], "lrs": [0.1, 1.0]}) == costs.estimate_seconds(
        {**mlp, "seeds": [0, 1, 2], "lrs": [0.1, 1.0], "stack": False})


def test_a_retry_gets_double_the_time_and_cuda_gets_a_gpu():
    a1, a2, a3 = (costs.train_resources(spec(algorithm="il_sgd"), attempt) for attempt in (1, 2, 3))
    assert a2.runtime_min == 2 * a1.runtime_min and a3.runtime_min == 4 * a1.runtime_min
    assert a1.runtime_min >= costs.SAFETY * a1.estimate_s / 60
    assert a1.gpu == 0 and costs.train_resources(spec(device="auto")).gpu == 0
    assert costs.train_resources(spec(device="cuda")).gpu == 1
    assert costs.train_resources(spec(dataset="digits", updates=10)).runtime_min == costs.MIN_RUNTIME_MIN
    small = costs.train_resources(spec(dataset="digits")).mem_mb
    assert costs.train_resources(spec(dataset="cifar10")).mem_mb > small >= costs.MEM_BASE_MB


def test_plan_table_sums_the_requests():
    config = load_merged_config([REPO / "config/tiny.yaml"], base=REPO / "config/config.yaml")
    table, summary = plan.plan_summary(config)
    assert len(table) == len(jobs(config)) == 2 and len(runs(config)) == 3  # one job per algorithm entry
    assert table["members"].tolist() == [2, 4]
    total = summary[summary["rule"] == "TOTAL"].iloc[0]
    assert total["cpu_hours"] == pytest.approx((table["runtime_min"] * table["cpus"]).sum() / 60)
    assert total["gpu_hours"] == 0


def test_merged_config_is_the_one_snakemake_builds():
    """The Snakefile reads config/config.yaml only when no --configfile is given; several merge in order."""
    config = load_merged_config([REPO / "config/tiny.yaml"], base=REPO / "config/config.yaml")
    exp = config["experiments"]["alonso_e2_digits"]
    assert exp["seeds"] == [0, 1] and exp["model"]["hidden"] == [16] and exp["updates"] == 60
    assert config["figures"]["alonso_e2_online"]["params"]["zoom_updates"] == 40
    assert list(config["experiments"]) == ["alonso_e2_digits"]  # nothing of the default config
    default = load_merged_config([], base=REPO / "config/config.yaml")
    assert "alonso_e1_b1" in default["experiments"]


def test_plan_command_prints_the_totals(capsys, tmp_path):
    assert main(["plan", "--base", str(REPO / "config/config.yaml"), "--configfile", str(REPO / "config/tiny.yaml"),
                 "--jobs", str(tmp_path / "jobs.csv")]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "cpu_hours" in out
    assert len((tmp_path / "jobs.csv").read_text().splitlines()) == 1 + 2


def test_the_rules_ask_for_the_plans_numbers():
    """`snakemake -n --profile profiles/slurm` shows each job's resources: they are plan's, per job."""
    r = subprocess.run(["snakemake", "-n", "--profile", "profiles/slurm", "--configfile", "config/tiny.yaml",
                        "--forceall"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    shown = {}
    for block in re.split(r"^\s*rule train_", r.stdout, flags=re.M)[1:]:
        exp, algo = re.match(r"(\w+?)__(\w+):", block).groups()
        res = re.search(r"resources: .*", block).group(0)
        shown[(exp, algo)] = {k: int(re.search(rf"\b{k}=(\d+)", res).group(1)) for k in ("mem_mb", "runtime", "gpu")}
    config = load_merged_config([REPO / "config/tiny.yaml"], base=REPO / "config/config.yaml")
    assert len(shown) == 2
    for (exp, algo), got in shown.items():
        want = costs.train_resources({**job_spec(config, exp, algo), "threads": 1})
        assert got == {"mem_mb": want.mem_mb, "runtime": want.runtime_min, "gpu": want.gpu}


def test_a_model_it_cannot_size_gets_a_generous_plan_not_an_error():
    with pytest.warns(UserWarning, match="cannot size model"):
        m = costs.model_cost({"type": "cnn", "channels": [4], "kernels": [99]}, "digits")
    assert m.flops >= costs.model_cost({"type": "mlp", "hidden": [1024] * 3}, "cifar10").flops


def test_plan_of_one_figure_names_what_it_is_drawn_from_and_only_its_jobs(capsys):
    config = load_merged_config([], base="config/config.yaml")
    table = plan.plan_table(config, figures=["alonso_e2_online"])
    assert set(table["experiment"]) == {"alonso_e2_digits"} and len(table) == len(jobs(config, "alonso_e2_digits"))
    assert main(["plan", "--figure", "alonso_e2_online"]) == 0
    assert "figure alonso_e2_online: notebook training_curves; experiments alonso_e2_digits" in capsys.readouterr().out
    with pytest.raises(KeyError, match="no figure 'nope'"):
        plan.plan_table(config, figures=["nope"])


def test_plan_with_measured_constants_then_restored():
    before = costs.estimate_seconds(spec())
    fast = costs.Costs(pass_overhead_s=1e-6, flops_per_s=1e13, eval_flops_per_s=1e14, startup_s=1.0, stack_overhead=1.0)
    with costs.using("cpu", fast):
        assert costs.estimate_seconds(spec()) < before / 10 and costs.COSTS["cpu"].stack_overhead == 1.0
    assert costs.estimate_seconds(spec()) == before and costs.COSTS["cpu"].stack_overhead == 3.0


def test_inner_flops_leave_out_the_input_layer():
    m = costs.model_cost({"type": "mlp", "hidden": [256, 256]}, "mnist")
    assert m.inner_flops == 2 * (256 * 256 + 256 * 10)


# one device with round numbers: every term of the model can be read off
ROUND = costs.Costs(pass_overhead_s=0.0, flops_per_s=1e11, eval_flops_per_s=1e10, startup_s=0.0, stack_overhead=1.0,
                    native_update_overhead_s=0.0, batch1_flops_per_s=1e9, mem_bytes_per_s=None)


def test_the_roofline_rate_grows_with_the_batch_up_to_the_peak():
    assert costs._rate(ROUND, 1) == 1e9 and costs._rate(ROUND, 64) == 6.4e10 and costs._rate(ROUND, 1000) == 1e11
    assert costs._rate(dataclasses.replace(ROUND, batch1_flops_per_s=None), 1) == 1e11  # no roofline: one rate


def test_native_updates_cost_their_flops_at_the_batch_rate():
    m = costs.model_cost({"type": "mlp", "hidden": [256, 256]}, "mnist")
    s = spec(updates=100, eval_every=1000, device="cpu")  # two evaluations (before and after)
    evals = 2 * 10_000 * m.flops / ROUND.eval_flops_per_s
    with costs.using("cpu", ROUND):
        if not costs._native_alone(s):
            pytest.skip("no native step planned")
        bp = costs.estimate_seconds(s) - evals
        il = costs.estimate_seconds({**s, "algorithm": "il_sgd", "hparams": {"T": 5}}) - evals
        bp64 = costs.estimate_seconds({**s, "batch_size": 64}) - evals
    assert bp == pytest.approx(100 * 3 * m.flops / 1e9)
    assert il == pytest.approx(100 * (2 * m.flops + 2 * 5 * m.inner_flops) / 1e9)
    assert bp64 == pytest.approx(100 * 3 * m.flops * 64 / 6.4e10)
    with costs.using("cpu", ROUND):  # float64: half the FLOP rate, the evaluation included
        assert costs.estimate_seconds({**s, "dtype": "float64"}) == pytest.approx(2 * (bp + evals))


def test_evaluations_are_counted_as_the_loop_runs_them():
    m = costs.model_cost({"type": "mlp", "hidden": [256, 256]}, "mnist")
    one = 10_000 * m.flops / ROUND.eval_flops_per_s
    fast = dataclasses.replace(ROUND, flops_per_s=1e30, batch1_flops_per_s=None)
    with costs.using("cpu", fast):
        for updates, every, n in ((100, 50, 3), (120, 50, 4), (50, 50, 2)):  # update 0, every 50, the last
            assert costs.estimate_seconds(spec(updates=updates, eval_every=every, keep_first_layer=False)) == pytest.approx(n * one, rel=1e-6)
            # the first layer kept up to date (ilrepro.first_layer; on this MLP only when asked: auto finds it does
            # not pay): a full product at the first evaluation, the kept one's share at the others
            kept = first_layer.mean_fraction(every, 784, 256, 10_000, n)
            assert 0.5 < kept < 1
            first = 10_000 * 2 * 784 * 256 / ROUND.eval_flops_per_s
            assert costs.estimate_seconds(spec(updates=updates, eval_every=every, keep_first_layer=True)) == pytest.approx(n * (one - (1 - kept) * first), rel=1e-6)
            assert costs.estimate_seconds(spec(updates=updates, eval_every=every)) == pytest.approx(n * one, rel=1e-6)
        # an energy-based network predicts by its free phase: its FLOPs as counted, more than one pass
        ebm = spec(updates=50, eval_every=50, algorithm="eqprop", model={"type": "mlp", "hidden": [256, 256], "activation": "tanh"},
                   hparams={"T": 10, "T_nudge": 5})
        free = costs.algorithm_work(ebm).predict
        assert free.flops > 2 * m.flops
        assert costs.estimate_seconds(ebm) == pytest.approx(2 * 10_000 * free.flops / ROUND.eval_flops_per_s, rel=1e-6)


def test_the_work_of_an_update_is_counted_by_running_it():
    """FLOPs per example and ATen calls of one update, of the prediction and of the reference gradient,
    counted by running the algorithm once: BP's update is the forward pass, the weight gradients and
    the input gradients above the first layer; the prediction a feedforward pass; an inference loop's
    calls and FLOPs grow by the same amount with every step."""
    m = costs.model_cost({"type": "mlp", "hidden": [256, 256]}, "mnist")
    bp = costs.algorithm_work(spec())
    assert bp.step.flops == 3 * m.flops - 2 * 784 * 256
    assert bp.predict.flops == m.flops and bp.reference.flops == bp.step.flops
    assert 0 < bp.predict.calls < bp.step.calls
    il = [costs.algorithm_work(spec(algorithm="il_sgd", hparams={"T": t})).step for t in (5, 6, 7)]
    assert il[1].flops - il[0].flops == pytest.approx(il[2].flops - il[1].flops) and il[1].flops > il[0].flops
    assert il[1].calls - il[0].calls == il[2].calls - il[1].calls > 0
    # weight-sized streams: the SGD step reads the gradient and the weight and writes the weight
    cifar = costs.algorithm_work(spec(dataset="cifar10", model={"type": "mlp", "hidden": [1024]}))
    assert cifar.step.stream_bytes >= 3 * 4 * 3072 * 1024
    # where the algorithm cannot run (an unknown one), None: the plan falls back to counting passes
    assert costs.algorithm_work(spec(algorithm="no_such_algorithm")) is None


def test_the_per_call_overhead_is_the_calibrated_layer_pass_over_its_calls():
    c = dataclasses.replace(ROUND, pass_overhead_s=1e-5)
    w = costs.algorithm_work(spec(model=costs._CALIBRATION_MODEL))
    assert costs._call_overhead_s(c) * w.step.calls == pytest.approx(3 * 3 * 1e-5)


def test_the_optimiser_streams_cost_memory_traffic():
    m = costs.model_cost({"type": "mlp", "hidden": [256, 256]}, "mnist")
    mem = dataclasses.replace(ROUND, flops_per_s=1e30, batch1_flops_per_s=None, eval_flops_per_s=1e30, mem_bytes_per_s=1e9)
    with costs.using("cpu", mem):
        sgd = costs.estimate_seconds(spec(updates=100, eval_every=1000))
        adam = costs.estimate_seconds(spec(updates=100, eval_every=1000, algorithm="bp_adam"))
    native_sgd = costs._native_alone(spec())
    # SGD writes the gradient, reads it and the weight, writes the weight: 4 streams; the native step at
    # batch 1, whose gradient the training does not read (no track_bp_cosine), only reads and writes the weight
    streams = 2 if native_sgd else 4
    assert sgd == pytest.approx(100 * streams * 4 * m.n_params / 1e9 + (0 if native_sgd else 100 * 2 * 3 * mem.pass_overhead_s), rel=1e-6)
    with costs.using("cpu", mem):
        sgd64 = costs.estimate_seconds(spec(updates=100, eval_every=1000, batch_size=64))
    assert sgd64 == pytest.approx(100 * 4 * 4 * m.n_params / 1e9 + (0 if native_sgd else 100 * 2 * 3 * mem.pass_overhead_s), rel=1e-6)
    assert adam == pytest.approx(100 * (8 * 4 * m.n_params / 1e9 + 1 * 3 * mem.pass_overhead_s), rel=1e-6)  # alone: torch's fused kernel
    with costs.using("cpu", dataclasses.replace(mem, cache_bytes=2**30)):  # weights in the cache: no streams
        assert costs.estimate_seconds(spec(updates=100, eval_every=1000)) == pytest.approx(0 if native_sgd else 600 * mem.pass_overhead_s)


def test_plan_reports_expected_use_below_the_request(capsys):
    config = load_merged_config([], base="config/config.yaml")
    _, summary = plan.plan_summary(config)
    total = summary.iloc[-1]
    assert 0 < total["estimate_cpu_hours"] < total["cpu_hours"]
    assert main(["plan"]) == 0
    assert "expected use:" in capsys.readouterr().out


def test_calibrate_measures_every_rate_and_keeps_the_known_cache_size():
    c = costs.calibrate("cpu")
    assert all(v > 0 for v in (c.pass_overhead_s, c.flops_per_s, c.eval_flops_per_s, c.batch1_flops_per_s, c.mem_bytes_per_s))
    assert c.cache_bytes == costs.COSTS["cpu"].cache_bytes > 0 and c.startup_s == costs.COSTS["cpu"].startup_s


def test_counting_the_work_is_quiet_and_forgets_nothing(caplog):
    """Planning runs algorithms on the pure-torch path without a "fast path not taken" line, and a
    training later in the process still logs its own."""
    import logging

    from ilrepro import native as nat

    reason = "ILREPRO_NATIVE=0"  # what the pure-torch path of an MLP's BP-SGD would log
    costs._algorithm_work.cache_clear()
    nat._said.discard(reason)
    with caplog.at_level(logging.INFO, logger="ilrepro.native"):
        costs.algorithm_work(spec(model={"type": "mlp", "hidden": [24]}))
        assert "not taken" not in caplog.text
        assert reason not in nat._said  # not remembered as said: a training still logs it
        with nat.disabled():
            nat._say(reason)
        assert f"not taken ({reason})" in caplog.text
