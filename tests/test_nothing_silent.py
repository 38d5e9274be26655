"""Nothing silent (issue 15): what a careless user gets wrong is an error that names the problem,
before any job where the config allows it; what a job read and how far it is are on record.
One test (or a few) per item of the issue, numbered as there."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import small_config

from ilrepro.config import ConfigError, ConfigWarning, load_merged_config, validate_config
from ilrepro.data import LOOKS, DatasetError, load_dataset
from ilrepro.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist")
NAMES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
         "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
needs_fmnist = pytest.mark.skipif(not FMNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def _mnist_lookalike(d: Path) -> None:
    """Files with MNIST's content fingerprint (its class counts, its mean pixel), made up."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for part, look in LOOKS["mnist"].items():
        if look.label_counts is not None:
            arr = rng.permutation(np.repeat(np.arange(10), look.label_counts))
        else:  # pixels 0 or 255 with the probability that gives MNIST's mean
            arr = np.where(rng.random((look.n, 28, 28)) < look.pixel_mean, 255, 0)
        _write_idx(d / NAMES[part], arr)


# 1. Fashion-MNIST can silently be MNIST ------------------------------------------------------------
def test_1_mnist_files_are_not_taken_for_fashion_mnist(tmp_path):
    _mnist_lookalike(tmp_path)  # in the root of data.dir, where both loaders look
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte is not Fashion-MNIST's train images: it looks like MNIST's train images"):
        load_dataset("fashion_mnist", tmp_path)
    ds = load_dataset("mnist", tmp_path)  # they are MNIST's look: accepted as MNIST, and said how
    assert {f["identity"] for f in ds.files} == {"content fingerprint"}


@needs_fmnist
def test_1_fashion_mnist_files_are_not_taken_for_mnist(tmp_path):
    for f in FMNIST.iterdir():
        shutil.copy(f, tmp_path / f.name)
    with pytest.raises(DatasetError, match=r"is not MNIST's train images: it looks like Fashion-MNIST's train images"):
        load_dataset("mnist", tmp_path)


def test_1_unknown_files_say_what_they_hold(tmp_path):
    for part, stem in NAMES.items():
        n = 100
        _write_idx(tmp_path / stem, np.zeros(n, np.uint8) if part.endswith("y") else np.zeros((n, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match=r"it holds 100 images, mean pixel 0.0000 \(expected 60000 images"):
        load_dataset("fashion_mnist", tmp_path)
    load_dataset("fashion_mnist", tmp_path, verify=False)  # a subset of one's own: on request only


def test_1_cifar10_batches_are_checked_by_their_published_md5(tmp_path):
    import pickle

    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": list(range(4))}))
    with pytest.raises(DatasetError, match=r"data_batch_1 is not CIFAR-10's data_batch_1: its md5 is [0-9a-f]{32}, the published one c99caf"):
        load_dataset("cifar10", tmp_path)
    ds = load_dataset("cifar10", tmp_path, verify=False)
    assert ds.train_x.shape == (20, 3, 32, 32) and [f["identity"] for f in ds.files] == ["not checked (data.verify: false)"] * 6


# 2. An incomplete data.dir silently falls back; meta.json records what was read ----------------------
def test_2_a_directory_with_only_some_files_is_an_error(tmp_path):
    _mnist_lookalike(tmp_path / "fashion_mnist")
    (tmp_path / "fashion_mnist" / NAMES["test_y"]).unlink()
    with pytest.raises(DatasetError, match=r"fashion_mnist holds only some of Fashion-MNIST's IDX files: missing t10k-labels-idx1-ubyte"):
        load_dataset("fashion_mnist", tmp_path)


@needs_fmnist
def test_2_meta_records_the_path_and_sha256_of_every_file_read(tmp_path):
    from ilrepro.train import train

    spec = {"experiment": "e", "algo": "bp", "algorithm": "bp_sgd", "dataset": "fashion_mnist", "data": {"dir": str(tmp_path)},
            "model": {"type": "mlp", "hidden": [8]}, "lr": 0.1, "seed": 0, "batch_size": 64, "updates": 2, "eval_every": 2}
    _, meta = train(spec, progress=False)
    files = {Path(f["path"]).name: f for f in meta["data_files"]}
    assert set(files) == {f.name for f in FMNIST.iterdir()}
    f = files["t10k-labels-idx1-ubyte.gz"]
    assert Path(f["path"]).parent == FMNIST.resolve() and f["identity"] == "content fingerprint"
    import hashlib

    assert f["sha256"] == hashlib.sha256((FMNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()).hexdigest()


def test_2_an_analysis_job_records_the_files_it_read_too():
    from ilrepro.analyses import run_analysis_spec

    _, meta = run_analysis_spec({"analysis": "s", "kind": "millidge_nudge_sweep", "params": {"seeds": [0], "lams": [1.0]}})
    assert [Path(f["path"]).name for f in meta["data_files"]] == ["digits.csv.gz"] and len(meta["data_files"][0]["sha256"]) == 64


# 3. Every output is 0600 whatever the umask ---------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_3_outputs_get_the_permissions_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text("x", tmp_path / "out.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == mode


# 4. Config holes: each caught before any job, naming the key ----------------------------------------
def _with(**changes) -> dict:
    """The small config with ``a__b__c=value`` set at config[a][b][c]."""
    c = small_config()
    for path, value in changes.items():
        node = c
        *head, last = path.split("__")
        for k in head:
            node = node[k]
        node[last] = value
    return c


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"experiments__e__batch_size": 5000}, r"^experiments.e.batch_size \(5000\) is larger than digits's training set \(1438 examples\)"),
        ({"experiments__e__algorithms__il__hparams": {"T": -1}}, r"^experiments.e.algorithms.il.hparams.T: il_sgd: hyper-parameter 'T' must be in \[0, inf\), got -1"),
        ({"experiments__e__algorithms__il__hparams": {"T": 2.5}}, r"^experiments.e.algorithms.il.hparams.T: .*must be an integer"),
        ({"experiments__e__algorithms__il__hparams": {"T": "abc"}}, r"^experiments.e.algorithms.il.hparams.T: .*must be an integer .* got 'abc'"),
        ({"experiments__e__algorithms__il__hparams": {"gamma_bot": -1}}, r"^experiments.e.algorithms.il.hparams.gamma_bot: .*must be in \[0, inf\)"),
        ({"experiments__e__algorithms__il__hparams": {"T": True}}, r"^experiments.e.algorithms.il.hparams.T: .*must be an integer"),
    ],
)
def test_4_hyper_parameters_and_sizes_are_typed_and_bounded(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_with(**changes))


def test_4_every_default_hyper_parameter_passes_its_own_check():
    from ilrepro.algorithms import ALGORITHMS
    from ilrepro.algorithms.base import _check_hparam  # noqa: PLC2701 - the rule under test

    for cls in ALGORITHMS.values():
        for k, v in cls.hparam_defaults().items():
            _check_hparam(cls.name, k, v, v, cls.types.get(k), cls.hparam_range(k), cls.choices.get(k))


def test_4_a_figure_whose_notebook_cannot_draw_its_experiment_fails_before_training():
    c = _with(experiments__e__model={"type": "autoencoder", "hidden": [8]},
              experiments__e__algorithms={"z": {"algorithm": "zil", "lr": [0.1]}})
    validate_config(copy.deepcopy(c))  # without the notebooks nothing says no...
    with pytest.raises(ConfigError, match=r"^figures.f.experiments: training_curves.ipynb plots test_acc, which experiment 'e' does not record \(model type autoencoder\)"):
        validate_config(c, notebooks=REPO / "notebooks")  # ...with them (as Snakemake runs it), before any job


def test_4_a_claim_naming_a_missing_algorithm_entry_is_a_config_error():
    c = _with(claims={"x": {"paper": "A", "statement": "s", "quantity": "q", "check": "early_lead", "threshold": 0, "direction": "above",
                            "params": {"experiment": "e", "algo": "il_prox", "baseline": "bp"}}})
    with pytest.raises(ConfigError, match=r"^claims.x.params.algo: 'il_prox' is not an algorithm entry of experiment 'e'; it has: bp, il"):
        validate_config(c)


# 5. Labels are not range-checked on load ------------------------------------------------------------
def test_5_a_label_out_of_range_names_its_file(tmp_path):
    _mnist_lookalike(tmp_path / "mnist")
    f = tmp_path / "mnist" / NAMES["train_y"]
    labels = np.frombuffer(f.read_bytes()[8:], np.uint8).copy()
    labels[1234] = 12
    _write_idx(f, labels)
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: label 12 at index 1234 is not a class of this data set \(0..9\)"):
        load_dataset("mnist", tmp_path, verify=False)


# 6. YAML errors, long schema errors, a full disk, absurd sizes ------------------------------------------
def test_6_a_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments:\n  e: {dataset: digits\n  f: 3\n")
    with pytest.raises(ConfigError, match=rf"^{bad}:3:4: YAML syntax error"):
        load_merged_config([bad])


def test_6_a_yaml_error_in_the_default_config_names_file_and_line_in_snakemake(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns(".git", "results", "figures", ".snakemake", "*.egg-info"))
    with open(repo / "config" / "config.yaml", "a") as fh:
        fh.write("\n  broken: {x: 1\n")
    out = subprocess.run(["snakemake", "-n"], cwd=repo, capture_output=True, text=True)
    assert out.returncode != 0 and "config/config.yaml:" in out.stderr + out.stdout and "YAML syntax error" in out.stderr + out.stdout


def test_6_a_schema_error_is_one_short_paragraph_with_the_key_path_first():
    c = _with(experiments__e__model={"type": "mlp", "hidden": [8], "activaton": "relu"})
    with pytest.raises(ConfigError) as err:
        validate_config(c)
    msg = str(err.value)
    assert msg.startswith("config key 'experiments.e.model'") and "activaton" in msg
    assert msg.count("\n") == 0 and len(msg) < 300, msg


@pytest.mark.parametrize(
    "changes,message",
    [({"experiments__e__updates": 10**12}, r"'experiments.e.updates': 1000000000000 is greater than the maximum"),
     ({"experiments__e__seeds": [2**70]}, r"'experiments.e.seeds.0': 1180591620717411303424 is greater than the maximum")],
)
def test_6_absurd_numbers_are_rejected(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_with(**changes))


def test_6_an_absurd_run_length_gets_a_warning():
    c = _with(experiments__e__updates=10**9, experiments__e__eval_every=10**8, experiments__e__batch_size=1000,
              experiments__e__model={"type": "mlp", "hidden": [256, 256]})
    with pytest.warns(ConfigWarning, match=r"experiments.e.algorithms.il: one training job would take about [0-9,]+ CPU-days"):
        validate_config(c)


def _full_tmpfs(where: Path) -> bool:
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True).returncode != 0:
        return False
    subprocess.run(["dd", "if=/dev/zero", f"of={where / 'filler'}", "bs=4k"], capture_output=True)  # until no space is left
    return True


def test_6_a_job_that_cannot_write_its_log_says_so_on_snakemakes_stderr(tmp_path):
    disk = tmp_path / "full"
    if not _full_tmpfs(disk):
        pytest.skip("cannot mount a small tmpfs here (needs root) to fill it")
    try:
        script = f"source {REPO / 'workflow' / 'scripts' / 'logged.sh'}; logged {disk / 'job.log'} python -c 'print(\"x\" * 100000)'"
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        assert out.returncode != 0
        assert (disk / "job.log").stat().st_size == 0  # the log exists but nothing reached it
        assert "the log is empty: nothing could be written there (is the disk full?" in out.stderr, out.stderr
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_6_a_failing_job_shows_the_end_of_its_log_on_snakemakes_stderr(tmp_path):
    log = tmp_path / "job.log"
    script = f"source {REPO / 'workflow' / 'scripts' / 'logged.sh'}; logged {log} python -c 'import sys; print(\"step 1\"); sys.exit(\"boom\")'"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert out.returncode == 1 and "failed (exit 1)" in out.stderr and "  | boom" in out.stderr and "  | step 1" in out.stderr


# 7. Progress inside a training ----------------------------------------------------------------------
def test_7_every_evaluation_of_a_training_prints_one_progress_line(capsys):
    from ilrepro.train import train

    spec = {"experiment": "e", "algo": "il", "algorithm": "il_sgd", "dataset": "digits", "model": {"type": "mlp", "hidden": [8]},
            "lr": 0.05, "seeds": [0, 1], "batch_size": 4, "updates": 30, "eval_every": 10, "hparams": {"T": 3}}
    train(spec)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train e/il/lr0.05")]
    assert len(lines) == 3
    assert lines[0].startswith("train e/il/lr0.05: update 10/30 (33 %), ") and "elapsed, ETA" in lines[0]
    assert "test_acc 0." in lines[-1] and "members 2, diverged 0" in lines[-1]


def test_7_an_analysis_job_prints_progress_lines(capsys):
    from ilrepro.analyses import run_analysis_spec

    run_analysis_spec({"analysis": "sweep", "kind": "millidge_nudge_sweep", "params": {"seeds": [0, 1], "lams": [1.0, 0.1]}})
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("analysis sweep: seed ")]
    assert [ln.split(" (")[0] for ln in lines] == ["analysis sweep: seed 1/2", "analysis sweep: seed 2/2"]
    assert "ETA" in lines[0] and "cosine" in lines[-1]


def test_7_the_train_command_streams_progress_into_its_log(tmp_path):
    spec = {"experiment": "e", "algo": "bp", "algorithm": "bp_sgd", "dataset": "digits", "model": {"type": "mlp", "hidden": [8]},
            "lr": 0.1, "seed": 0, "batch_size": 4, "updates": 20, "eval_every": 10}
    out = subprocess.run(["python", "-m", "ilrepro", "train", "--spec", json.dumps(spec), "--metrics", str(tmp_path / "m.parquet"),
                          "--meta", str(tmp_path / "meta.json")], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    assert "train e/bp/lr0.1: update 10/20 (50 %)" in out.stdout and "train e/bp/lr0.1: update 20/20 (100 %)" in out.stdout
