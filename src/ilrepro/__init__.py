"""ilrepro: reproduce inference learning (predictive coding) vs backprop from three papers."""

__version__ = "0.1.0"
