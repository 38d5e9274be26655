"""The figure notebooks: linted, parametrised, stored without outputs, named by the configs, and each
declaring what it can draw (ilrepro.notebooks), truthfully for every figure of every config."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ilrepro.notebooks import NotebookError, notebook_parameters, notebook_requirements
from ilrepro.train import metrics_columns

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CONFIGS = sorted((REPO / "config").glob("*.yaml"))
# What papermill passes to every notebook (workflow/rules/common.smk::figure_params).
INJECTED = {"figure", "experiments", "analyses", "tables", "summaries", "analysis_tables", "files", "out_pdf", "out_png"}


def _ruff() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    exe = shutil.which("ruff")
    return [exe] if exe else None


def _figures():
    for cfg in CONFIGS:
        c = yaml.safe_load(cfg.read_text())
        for fig, fc in (c.get("figures") or {}).items():
            yield pytest.param(c, fig, fc, id=f"{cfg.stem}:{fig}")


def test_ruff_lints_the_notebooks():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run([*ruff, "check", "--no-cache", "notebooks"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_parametrised_and_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0]["cell_type"] == "code", f"{path.name}: needs one code cell tagged 'parameters'"
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, f"{path.name}: cell {i} has stored outputs"
    src = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "import torch" not in src and "from torch" not in src, f"{path.name}: notebooks read tables, never torch"
    assert INJECTED - {"files"} <= set(notebook_parameters(path)), f"{path.name}: declare the injected parameters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_declares_what_it_draws(path):
    req = notebook_requirements(path)
    assert req["draws"] and {"experiments", "analyses", "files"} & set(req)


@pytest.mark.parametrize("config,fig,fc", _figures())
def test_config_figure_fits_its_notebook(config, fig, fc):
    path = REPO / "notebooks" / f"{fc['notebook']}.ipynb"
    assert path.exists(), f"figures.{fig}.notebook: no {path.relative_to(REPO)}"
    unknown = set(fc.get("params", {})) - set(notebook_parameters(path))
    assert not unknown, f"figures.{fig}.params: {sorted(unknown)} are not parameters of {path.name}"
    req = notebook_requirements(path, fc.get("params", {}))
    for kind in ("experiments", "analyses", "files"):
        listed = fc.get(kind, [])
        if kind not in req:
            assert not listed, f"figures.{fig}: {path.name} reads no {kind}"
            continue
        lo, hi = req[kind]["min"], req[kind].get("max", len(listed))
        assert lo <= len(listed) <= hi, f"figures.{fig}.{kind}: {path.name} draws {lo}..{hi}, got {len(listed)}"
    for e in fc.get("experiments", []):
        missing = set(req["experiments"]["columns"]) - metrics_columns(config["experiments"][e])
        assert not missing, f"figures.{fig}: experiment {e} has no {sorted(missing)} for {path.name}"
    for a in fc.get("analyses", []):
        kind = config["analyses"][a]["kind"]
        assert kind in req["analyses"]["kinds"], f"figures.{fig}: {path.name} does not draw analyses of kind {kind}"


def _write_nb(path: Path, meta: dict | None, params: str = 'metrics = ["test_acc"]\nzoom = 0\n') -> Path:
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params, "outputs": [], "execution_count": None}],
          "metadata": {} if meta is None else {"ilrepro": meta}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_notebook_requirements_reads_the_metadata(tmp_path):
    meta = {"draws": "curves", "requires": {"experiments": {"columns": ["update"], "columns_from": ["metrics", "extra"]}}}
    p = _write_nb(tmp_path / "a.ipynb", meta)
    assert notebook_parameters(p) == {"metrics": ["test_acc"], "zoom": 0}
    # the notebook's default for `metrics`; `extra` is neither given nor defaulted
    assert notebook_requirements(p) == {"draws": "curves", "experiments": {"min": 1, "columns": ["update", "test_acc"],
                                                                          "columns_from": ["metrics", "extra"]}}
    got = notebook_requirements(p, {"metrics": ["test_loss"], "extra": "bp_cosine"})
    assert got["experiments"]["columns"] == ["update", "test_loss", "bp_cosine"]
    p = _write_nb(tmp_path / "b.ipynb", {"draws": "bars", "requires": {"analyses": {"min": 2, "kinds": ["cost_per_update"]}}})
    assert notebook_requirements(p) == {"draws": "bars", "analyses": {"min": 2, "kinds": ["cost_per_update"]}}


@pytest.mark.parametrize(
    "meta,message",
    [
        (None, r"no readable metadata\['ilrepro'\]"),
        ({"draws": "x"}, r"no readable metadata\['ilrepro'\]"),
        ({"draws": "x", "requires": {}}, r"must name some of experiments, analyses, files"),
        ({"draws": "x", "requires": {"experiment": {}}}, r"must name some of .*\['experiment'\]"),
    ],
)
def test_notebook_requirements_rejects_bad_metadata(tmp_path, meta, message):
    with pytest.raises(NotebookError, match=message):
        notebook_requirements(_write_nb(tmp_path / "x.ipynb", meta))


def test_notebooks_module_does_not_import_torch():
    code = "import sys, ilrepro.notebooks; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
