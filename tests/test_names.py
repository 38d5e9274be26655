"""Every registered algorithm has a display name and a colour; the plotting module does not need torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ilrepro.algorithms import ALGORITHMS, display_name
from ilrepro.names import COLOURS, LABELS


def test_every_algorithm_has_a_name_and_a_colour():
    assert set(ALGORITHMS) <= set(LABELS) and set(ALGORITHMS) <= set(COLOURS)
    assert display_name("il_prox") == "IL-prox" and display_name("unknown_algo") == "unknown_algo"
    assert len({LABELS[n] for n in ALGORITHMS}) == len(ALGORITHMS)  # distinct in legends


def test_notebooks_plotting_helpers_do_not_import_torch():
    code = "import sys, ilrepro.plotting; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
