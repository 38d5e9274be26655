"""The SLURM path for real: the tiny config through `--profile profiles/slurm` on a live one-node SLURM
cluster (started by .ci/slurm-up.sh: localhost, munge, slurmctld, slurmd), compared with a local run.

Skipped, with the reason, where SLURM cannot start (not root, no apt-get, no binaries, daemons fail).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from ilrepro.experiments import jobs, runs
import pytest

from test_pipeline import FIG, make_workdir

REPO = Path(__file__).resolve().parents[1]
EXP = "alonso_e2_digits"
TINY = yaml.safe_load((REPO / "config/tiny.yaml").read_text())
N_RUNS = len(runs(TINY))  # every run (learning rate) of the tiny config
N_JOBS = len(jobs(TINY))  # its training jobs (one per algorithm entry)
# Flags for a one-node test cluster, not for the user profile: it has no accounting database, so job
# states come from squeue (the default, sacct, cannot answer); short waits keep the test short; the job
# logs are kept so that the test can read them.
TEST_CLUSTER_FLAGS = (
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-keep-successful-logs",
    "--latency-wait", "5",
    "--seconds-between-status-checks", "2",
)
# Columns that measure speed, not results: they differ between any two runs.
TIMING = {"updates_per_s"}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster() -> tuple[int, str | None]:
    """Start (or find) the one-node cluster; returns its CPU count and a partition that is not the
    default (.ci/slurm-up.sh makes 'other'; None on a cluster without one), or skips saying why."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"SLURM test skipped: snakemake-executor-plugin-slurm is not installed ({exc})")
    r = subprocess.run([str(REPO / ".ci/slurm-up.sh")], capture_output=True, text=True, timeout=600)
    print(r.stderr)
    if r.returncode != 0:
        pytest.skip(f"SLURM test skipped: no one-node SLURM cluster could start: {r.stderr.strip()}")
    cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True, check=True)
    parts = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    return int(cpus.stdout.split()[0]), next((p for p in parts if not p.endswith("*")), None)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> tuple[Path, int, str | None]:
    cpus, partition = cluster
    d = make_workdir(tmp_path_factory.mktemp("slurm"))
    bundle = min(2, cpus)  # trainings per SLURM job: the node must hold a bundle's CPUs at once
    cmd = ["snakemake", "--profile", "profiles/slurm", "--configfile", "config/tiny.yaml",
           "--group-components", f"train={bundle}", "--cores", str(bundle), *TEST_CLUSTER_FLAGS]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBATCH_")}
    if partition:  # the user's partition, as the profile documents it
        env["SBATCH_PARTITION"] = partition
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=1200, env=env)
    print(r.stdout[-3000:], r.stderr[-6000:])
    assert r.returncode == 0, r.stdout + r.stderr
    return d, bundle, partition


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    d = make_workdir(tmp_path_factory.mktemp("local"))
    cmd = ["snakemake", "--cores", "2", "--configfile", "config/tiny.yaml"]
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def _metas(d: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((d / "results/runs" / EXP).glob("*/*/meta.json"))]


def test_trainings_ran_as_slurm_jobs(slurm_run):
    d, bundle, partition = slurm_run
    metas = _metas(d)
    assert len(metas) == N_RUNS
    ids = [m["slurm_job_id"] for m in metas]
    assert all(ids), f"a training ran outside SLURM: job ids {ids}"
    assert all(m["device"] == "cpu" and m["hardware"] and m["host"] for m in metas)
    # bundling: `bundle` training jobs per SLURM job
    assert len(set(ids)) == math.ceil(N_JOBS / bundle), ids
    for job in set(ids):
        # the controller knows the job and that it completed (no accounting database: scontrol, not sacct)
        show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
        assert "JobState=COMPLETED" in show.stdout, show.stdout + show.stderr
        if partition:
            assert f"Partition={partition} " in show.stdout, show.stdout
        # the plugin's job log, named by the SLURM job id, shows the job's snakemake finishing its trainings
        logs = list((d / ".snakemake/slurm_logs").glob(f"**/{job}.log"))
        assert len(logs) == 1, logs
        text = logs[0].read_text()
        ran = {m["spec"]["algo"] for m in metas if m["slurm_job_id"] == job}
        logged = set(re.findall(r"^localrule train_\w+?__(\w+):$", text, re.M))
        assert logged == ran, text
        assert "Finished jobid" in text and "Error" not in text


def test_aggregation_and_figures_ran_locally(slurm_run):
    d = slurm_run[0]
    rule_logs = {p.name for p in (d / ".snakemake/slurm_logs").iterdir()}
    assert rule_logs and all("train" in name for name in rule_logs), rule_logs
    for ext in ("pdf", "png"):
        assert (d / f"figures/{FIG}.{ext}").stat().st_size > 5_000


def test_slurm_results_equal_a_local_run(slurm_run, local_run):
    d = slurm_run[0]
    for name, read in (("metrics.parquet", pd.read_parquet), ("summary.csv", pd.read_csv)):
        got, want = (read(w / f"results/{EXP}/{name}") for w in (d, local_run))
        assert TIMING <= set(got.columns)
        pd.testing.assert_frame_equal(got.drop(columns=list(TIMING)), want.drop(columns=list(TIMING)))
    assert [m["slurm_job_id"] for m in _metas(local_run)] == [os.environ.get("SLURM_JOB_ID")] * N_RUNS
