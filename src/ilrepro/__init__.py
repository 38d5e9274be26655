"""ilrepro: reproduce inference learning (predictive coding) vs backprop from three papers."""

from . import mkl_vendor as _mkl_vendor

__version__ = "0.1.0"

# before anything imports torch: MKL's vectorised kernels on AMD CPUs too (see ilrepro.mkl_vendor)
_mkl_vendor.apply()
