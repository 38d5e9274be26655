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


def test_two_entries_of_one_algorithm_get_their_own_names_and_colours():
    import pandas as pd

    from ilrepro.names import entry_name
    from ilrepro.plotting import label_colors, selected_runs

    assert entry_name("pc_nudge", "pc_nudge") == "PC-Nudge" and entry_name("pc_nudge_direct", "pc_nudge") == "PC-Nudge direct"
    key = {"experiment": "e", "lr": 0.05}
    table = pd.DataFrame([{**key, "algo": a, "algorithm": b, "update": 0} for a, b in
                          (("pc_nudge", "pc_nudge"), ("pc_nudge_direct", "pc_nudge"), ("bp_sgd", "bp_sgd"))])
    runs = selected_runs(table, table.assign(selected=True))
    assert list(runs["label"]) == ["PC-Nudge (α=0.05)", "PC-Nudge direct (α=0.05)", "BP-SGD (α=0.05)"]
    colours = label_colors(runs)
    assert colours["PC-Nudge (α=0.05)"] == COLOURS["pc_nudge"] and colours["BP-SGD (α=0.05)"] == COLOURS["bp_sgd"]
    assert len(set(map(str, colours.values()))) == 3
