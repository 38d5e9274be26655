"""End-to-end: the real Snakefile on a tiny config, in a temporary directory."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LINKED = ("Snakefile", "workflow", "notebooks", "src", "config", "profiles", "environment.yml")
FIG = "alonso_e2_online"

pytestmark = pytest.mark.e2e


def make_workdir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (d / name).symlink_to(REPO / name)
    return d


def smk(d: Path, *args: str, config: str = "config/tiny.yaml", timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = ["snakemake", *args, "--cores", "2", "--configfile", config]  # targets before the nargs="+" option
    return subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout)


def jobs_planned(out: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    counts: dict[str, int] = {}
    lines = out.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def _incomplete_markers(d: Path) -> set[str]:
    """Output paths Snakemake has marked incomplete (marker files named by the base64 of the path)."""
    out = set()
    for f in (d / ".snakemake" / "incomplete").glob("*"):
        try:
            out.add(base64.urlsafe_b64decode(f.name).decode())
        except ValueError:
            pass
    return out


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    d = make_workdir(tmp_path_factory.mktemp("pipeline"))
    r = smk(d)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def test_pipeline_produces_tables_and_figure(done):
    table = pd.read_parquet(done / "results/alonso_e2_digits/metrics.parquet")
    assert set(table["algo"]) == {"bp_sgd", "il_sgd"}
    assert table.groupby("algo")["seed"].nunique().tolist() == [2, 2]
    assert sorted(table["update"].unique()) == [0, 20, 40, 60]
    assert table["test_acc"].between(0, 1).all()
    # the diverging run (IL-SGD at lr 1e4) is a recorded result: stopped early, NaN loss, status diverged
    div = table[table["lr"] == 10000]
    assert set(div["status"]) == {"diverged"} and div["update"].max() < 60 and div["test_loss"].isna().any()
    summary = pd.read_csv(done / "results/alonso_e2_digits/summary.csv")
    assert summary["selected"].sum() == 2
    assert summary.loc[summary["lr"] == 10000, "n_diverged"].item() == 2
    assert not summary.loc[summary["lr"] == 10000, "selected"].item()
    claims = pd.read_csv(done / "results/claims/tiny.csv")  # the config's own claims file
    assert list(claims["claim"]) == ["tiny_online", "tiny_path"]
    assert claims["value"].notna().all() and set(claims["result"]) <= {"pass", "FAIL"}
    assert (done / f"figures/{FIG}.csv").exists()
    for ext in ("pdf", "png"):
        f = done / f"figures/{FIG}.{ext}"
        assert f.stat().st_size > 5_000, f
    assert (done / f"figures/{FIG}.pdf").read_bytes().startswith(b"%PDF")
    assert (done / f"figures/{FIG}.png").read_bytes().startswith(b"\x89PNG")
    executed = (done / f"results/notebooks/{FIG}.ipynb").read_text()
    assert "injected-parameters" in executed


def test_second_run_does_no_work(done):
    r = smk(done, "-n")
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr, r.stdout + r.stderr


def test_one_figure_target_rebuilds_only_the_figure(done):
    (done / f"figures/{FIG}.pdf").unlink()
    r = smk(done, "-n", f"figures/{FIG}.pdf")
    assert jobs_planned(r.stdout) == {"figure": 1, "total": 1} or jobs_planned(r.stdout) == {"figure": 1}, r.stdout
    r = smk(done, f"figures/{FIG}.pdf")
    assert r.returncode == 0 and (done / f"figures/{FIG}.pdf").exists(), r.stderr


def test_changing_one_parameter_reruns_only_its_jobs(done, tmp_path):
    cfg = yaml.safe_load((REPO / "config/tiny.yaml").read_text())
    cfg["experiments"]["alonso_e2_digits"]["algorithms"]["il_sgd"]["hparams"]["T"] = 6
    p = tmp_path / "changed.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = smk(done, "-n", config=str(p))
    # il_sgd's job (both learning rates x both seeds, one job); bp_sgd's job is untouched
    planned = jobs_planned(r.stdout)
    assert planned == {"train_alonso_e2_digits__il_sgd": 1, "aggregate": 1, "figure": 1, "claims": 1, "all": 1}, r.stdout


def test_report_builds(done):
    r = smk(done, "--report", "report.html")
    assert r.returncode == 0, r.stdout + r.stderr
    html = (done / "report.html").read_text(errors="replace")
    assert len(html) > 50_000 and "tiny_online" in html or "claims" in html


def test_lint_is_clean():
    r = subprocess.run(["snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Congratulations" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c["experiments"]["alonso_e2_digits"].update(updatez=1), "'updatez' was unexpected"),
        (lambda c: c["experiments"]["alonso_e2_digits"].update(batch_size="one"), "'one' is not of type 'integer'"),
        (lambda c: c["experiments"]["alonso_e2_digits"]["algorithms"]["bp_sgd"].update(algorithm="bp_sdg"), "unknown algorithm 'bp_sdg'"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, edit, message):
    d = make_workdir(tmp_path / "w")
    cfg = yaml.safe_load((REPO / "config/tiny.yaml").read_text())
    edit(cfg)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    r = smk(d, config=str(tmp_path / "bad.yaml"))
    assert r.returncode != 0 and message in r.stdout + r.stderr, r.stdout + r.stderr
    assert not (d / "results").exists()


def test_kill_then_rerun_redoes_only_unfinished_runs(tmp_path):
    d = make_workdir(tmp_path / "w")
    cfg = yaml.safe_load((REPO / "config/tiny.yaml").read_text())
    exp = cfg["experiments"]["alonso_e2_digits"]
    exp.update(updates=12000, eval_every=500, seeds=[0, 1, 2])
    exp["algorithms"]["il_sgd"]["hparams"]["T"] = 10
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(cfg))
    cmd = ["snakemake", "--cores", "2", "--configfile", str(tmp_path / "slow.yaml")]
    proc = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = d / "results/runs/alonso_e2_digits"
    deadline = time.time() + 300
    try:
        # the first job (BP-SGD's run) done and recorded by Snakemake (no longer marked incomplete)
        while time.time() < deadline and not [p for p in runs.glob("*/*/meta.json") if str(p.relative_to(d)) not in _incomplete_markers(d)]:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Finished = written, and no longer marked incomplete by Snakemake (a job killed between writing its
    # outputs and Snakemake recording it is rightly run again).
    marked = _incomplete_markers(d)
    finished = {p: p.stat().st_mtime_ns for p in runs.glob("*/*/meta.json") if str(p.relative_to(d)) not in marked}
    assert 1 <= len(finished) < 3, "the kill did not land mid-run"
    assert marked, "no job was interrupted"
    assert not (d / "figures" / f"{FIG}.pdf").exists()
    # every output file present is complete: each metrics table reads, and no temp file is left as output
    for m in runs.glob("*/*/metrics.parquet"):
        pd.read_parquet(m)
    # kill -9 leaves Snakemake's lock behind: --unlock, then the same command finishes the work
    assert subprocess.run([*cmd, "--unlock"], cwd=d, capture_output=True).returncode == 0
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was recomputed"
    assert len(list(runs.glob("*/*/meta.json"))) == 3
    assert (d / "figures" / f"{FIG}.pdf").exists()


@pytest.mark.parametrize("rule,marker", [("aggregate", "ilrepro aggregate"), ("figure", "papermill")])
def test_kill_during_aggregation_or_notebook_then_rerun(tmp_path, rule, marker):
    """kill -9 the first run while an aggregate job / a notebook is running: the rerun plans the
    interrupted job (and what depends on it), never a finished training, and finishes with complete files."""
    import psutil

    d = make_workdir(tmp_path / "w")
    cmd = ["snakemake", "--cores", "1", "--configfile", "config/tiny.yaml"]
    proc = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    hit = False
    deadline = time.time() + 600
    try:
        while time.time() < deadline and not hit and proc.poll() is None:
            for p in psutil.Process(proc.pid).children(recursive=True):
                try:
                    hit = hit or marker in " ".join(p.cmdline())
                except psutil.Error:
                    pass
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert hit, f"never saw a running {rule} job"
    assert not (d / f"figures/{FIG}.pdf").exists()
    assert subprocess.run(["snakemake", "--unlock", "--configfile", "config/tiny.yaml"], cwd=d, capture_output=True).returncode == 0
    plan = jobs_planned(smk(d, "-n").stdout)
    assert plan.get(rule) == 1 and not any(name.startswith("train") for name in plan), plan
    if rule == "figure":
        assert "aggregate" not in plan, plan
    r = smk(d)
    assert r.returncode == 0, r.stdout + r.stderr
    pd.read_parquet(d / "results/alonso_e2_digits/metrics.parquet")
    assert (d / f"figures/{FIG}.pdf").read_bytes().startswith(b"%PDF")
