"""What each figure notebook can draw, as it declares in its notebook metadata (torch-free).

Every notebook under ``notebooks/`` carries, in its top-level metadata, an ``ilrepro`` entry::

    {"draws": "<one line: what the figure shows>",
     "requires": {
         "experiments": {"min": 1, "max": 2,                 # how many the figure entry may list
                         "columns": ["test_acc"],           # columns every metrics table must have
                         "columns_from": ["metrics"],       # params whose values are such columns
                         "roles": ["...", "..."]},          # what each listed experiment is, in order
         "analyses": {"min": 1, "kinds": ["zil_divergence"]},  # the analysis `kind:`s it can draw
         "files": {"min": 1}}}                              # other pipeline outputs it reads

A kind of input the notebook does not read has no key in ``requires``. Columns of a metrics table:
``update``, ``test_loss``, ``delta_norm`` always; ``test_acc`` for classification (an autoencoder has
only a loss); ``path_length`` with ``track_path_length``; with ``track_bp_cosine`` a row per update and
``bp_cosine``, ``bp_cosine_flat``, ``bp_sqdist``, ``train_loss``, ``train_acc`` (test measures then NaN off
the evaluations).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NotebookError", "metadata_key", "notebook_parameters", "notebook_requirements"]

metadata_key = "ilrepro"

_KINDS = ("experiments", "analyses", "files")


class NotebookError(ValueError):
    """A notebook without a readable ``ilrepro`` metadata entry."""


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise NotebookError(f"{path}: not a readable notebook ({err})") from None


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """The defaults of the notebook's ``parameters``-tagged cell: every ``name = <literal>``."""
    path = Path(path)
    cells = [c for c in _read(path).get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise NotebookError(f"{path}: {len(cells)} cells tagged 'parameters', expected one")
    src = cells[0]["source"]
    out: dict[str, Any] = {}
    for node in ast.parse(src if isinstance(src, str) else "".join(src)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # not a literal: no default to report
    return out


def notebook_requirements(path: str | Path, params: Mapping[str, Any] | None = None) -> dict:
    """The ``requires`` entry of a notebook's ``ilrepro`` metadata, plus ``draws``.

    Returns ``{"draws": str, "experiments": {...}, "analyses": {...}, "files": {...}}`` with only the
    input kinds the notebook reads, ``min`` defaulting to 1. For experiments, ``columns`` also holds the
    values of each ``columns_from`` parameter: from ``params`` (a figure entry's ``params:``) where it
    names it, else the notebook's default (:func:`notebook_parameters`).
    """
    path = Path(path)
    try:
        meta = _read(path)["metadata"][metadata_key]
        requires = meta["requires"]
        draws = meta["draws"]
    except (KeyError, TypeError) as err:
        raise NotebookError(f"{path}: no readable metadata['{metadata_key}'] with 'draws' and 'requires' ({err!r})") from None
    unknown = set(requires) - set(_KINDS)
    if unknown or not requires:
        raise NotebookError(f"{path}: metadata['{metadata_key}']['requires'] must name some of {', '.join(_KINDS)}; got {sorted(requires)}")
    out: dict[str, Any] = {"draws": str(draws)}
    for kind in _KINDS:
        if kind not in requires:
            continue
        req = dict(requires[kind])
        req.setdefault("min", 1)
        if kind == "experiments":
            columns = list(req.get("columns", []))
            effective = {**notebook_parameters(path), **(params or {})} if req.get("columns_from") else {}
            for name in req.get("columns_from", []):
                value = effective.get(name) or []
                for col in [value] if isinstance(value, str) else value:
                    if col not in columns:
                        columns.append(col)
            req["columns"] = columns
        out[kind] = req
    return out
