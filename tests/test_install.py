"""A non-editable install is self-contained: the CLI finds its schema inside the package and plans the
paper config from another directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.e2e
def test_plan_from_a_non_editable_install_in_another_directory(tmp_path):
    env_dir = tmp_path / "venv"
    # the venv sees the installed dependencies (torch, snakemake, pip, ...) but gets its own copy of ilrepro
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    build = tmp_path / "src-copy"  # build from a copy: a build must not write into the checkout

    skip = shutil.ignore_patterns(".git", "results", "figures", ".snakemake", "*.egg-info", "build", "__pycache__")
    shutil.copytree(ROOT, build, ignore=skip)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(build)],
                   check=True, env=env, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(py), "-c", "import ilrepro, ilrepro.config as c; print(ilrepro.__file__); print(c.SCHEMA_PATH)"],
                           check=True, env=env, cwd=elsewhere, capture_output=True, text=True).stdout.split()
    assert all(str(env_dir) in w for w in where), where  # the installed copy, not this checkout
    out = subprocess.run([str(env_dir / "bin" / "ilrepro"), "plan", "--configfile", str(ROOT / "config" / "paper.yaml")],
                         env=env, cwd=elsewhere, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TOTAL" in out.stdout and "alonso_e1" in out.stdout
