"""Every algorithm's display name and colour, the same in every figure; torch-free, so that the
notebooks (which only read tables) do not import torch. A test checks that every registered algorithm
has an entry."""

from __future__ import annotations

__all__ = ["LABELS", "COLOURS", "DATASETS", "display_name", "dataset_name", "entry_name"]

# BP family in blues, IL family in warm colours
LABELS: dict[str, str] = {
    "bp_sgd": "BP-SGD",
    "bp_adam": "BP-Adam",
    "bp_prox": "BP-prox",
    "implicit_sgd": "implicit SGD",
    "il_sgd": "IL-SGD",
    "il_adam": "IL-Adam",
    "il_prox": "IL-prox",
    "il_prox_fast": "IL-prox Fast",
    "il_prox_adam": "IL-prox Adam",
    "zil": "Z-IL",
    "fa_zil": "Fa-Z-IL",
    "pc_nudge": "PC-Nudge",
    "eqprop": "EqProp",
    "chl": "CHL",
}
COLOURS: dict[str, str] = {
    "bp_sgd": "tab:blue", "bp_adam": "tab:cyan", "bp_prox": "tab:purple", "implicit_sgd": "black",
    "il_sgd": "tab:orange", "il_adam": "tab:brown", "il_prox": "tab:red", "il_prox_fast": "tab:pink",
    "il_prox_adam": "tab:olive", "zil": "tab:green", "fa_zil": "tab:gray",
    "pc_nudge": "tab:red", "eqprop": "tab:orange", "chl": "tab:purple",
}


def display_name(name: str) -> str:
    return LABELS.get(name, name)


# data sets as the papers write them
DATASETS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "digits": "digits"}


def dataset_name(name: str) -> str:
    return DATASETS.get(name, name)


def entry_name(entry: str, algorithm: str) -> str:
    """A config entry's display name: its algorithm's, plus what the entry's name adds to the
    algorithm's (``pc_nudge_direct`` of ``pc_nudge``: 'PC-Nudge direct'), so that two entries of one
    algorithm stay apart in a figure."""
    if entry == algorithm:
        return display_name(algorithm)
    rest = entry[len(algorithm) + 1:] if entry.startswith(algorithm + "_") else entry
    return f"{display_name(algorithm)} {rest.replace('_', ' ')}"
