"""Algorithms, one small module per family; importing this package registers them all."""

from . import bp, ebm, il, prox, zil  # noqa: F401  (registration side effect)
from ..names import display_name
from .base import ALGORITHMS, Algorithm, AlgorithmError, bp_gradient, make_algorithm

__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmError", "bp_gradient", "display_name", "make_algorithm"]
