"""MKL's vectorised kernels on non-Intel x86 CPUs (AMD EPYC, Ryzen).

torch's x86 wheels link Intel MKL statically, and MKL picks its GEMM kernel by asking
``mkl_serv_intel_cpu_true()`` whether the CPU is an Intel one: on an AMD CPU it answers no and MKL
runs its generic kernel whatever the CPU supports. Measured on an AMD EPYC (Zen 5, AVX-512), one
thread, torch 2.14.1 / MKL 2024.2: ``mkl_serv_cpu_detect()`` 0 (the generic path), 64x256x256 SGEMM
94 GFLOP/s, 1024^3 96; with the answer yes: code path 7 (AVX-512), 191 and 215 GFLOP/s. MKL still
reads the CPU's feature flags for the kernel it picks, so an AMD CPU without AVX-512 gets the AVX2 one.

The answer is changed the usual way, by a one-line C library defining ``mkl_serv_intel_cpu_true``
loaded into the global symbol scope *before* torch (``RTLD_GLOBAL``): MKL's call then resolves to it
(the same as ``LD_PRELOAD`` would). :func:`apply` does that; ``import ilrepro`` calls it, so every job
(``python -m ilrepro ...``) gets it. It is a no-op on Intel CPUs, off with ``ILREPRO_MKL_VENDOR=0``,
and where it cannot act (torch already imported, no C compiler, not x86 Linux) it says why in one log
line. This module must not import torch. What it did is :data:`status`, recorded in every job's
``meta.json`` (``blas``) with MKL's code path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from . import layout

__all__ = ["SHIM_SOURCE", "apply", "code_path", "cpu_vendor", "status"]

log = logging.getLogger("ilrepro.mkl_vendor")

SHIM_SOURCE = "/* ilrepro: MKL asks this whether the CPU is an Intel one; its kernels follow the CPU's flags */\n" \
              "int mkl_serv_intel_cpu_true(void) { return 1; }\n"

# what apply() did in this process: "applied", or why not ("not needed: GenuineIntel", "off: ...", ...)
status: str = "not tried"


def cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _build() -> Path:
    """The shim, compiled once per source into the cache (atomic rename: concurrent jobs are safe)."""
    key = hashlib.sha256(SHIM_SOURCE.encode()).hexdigest()[:16]
    lib = layout.cache_root() / "mkl_vendor" / f"intel_cpu_true_{key}.so"
    if lib.exists():
        return lib
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise OSError("no C compiler (cc, gcc or clang) on PATH")
    lib.parent.mkdir(parents=True, exist_ok=True)
    src = lib.with_suffix(f".{os.getpid()}.c")
    tmp = lib.with_suffix(f".{os.getpid()}.so")
    src.write_text(SHIM_SOURCE)
    try:
        r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src)], capture_output=True, text=True, timeout=120, check=False)
        if r.returncode != 0:
            raise OSError(f"{cc} failed: {r.stderr.strip()[:200]}")
        os.replace(tmp, lib)
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return lib


def apply() -> str:
    """Load the shim before torch where the CPU is not an Intel one; returns (and sets) :data:`status`.
    ``ILREPRO_MKL_VENDOR=force``: also on an Intel CPU (tests; there MKL's own answer is already yes)."""
    global status
    if status == "applied":
        return status
    setting = os.environ.get("ILREPRO_MKL_VENDOR", "1")
    vendor = cpu_vendor()
    if setting == "0":
        status = "off: ILREPRO_MKL_VENDOR=0"
    elif sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        status = f"not needed: {sys.platform} {platform.machine()}"
    elif vendor == "GenuineIntel" and setting != "force":
        status = "not needed: GenuineIntel"
    elif "torch" in sys.modules:
        status = "too late: torch was imported before ilrepro"
        log.warning("ilrepro: MKL runs its generic kernels on this %s CPU (torch was imported before ilrepro; import ilrepro "
                    "first, or set LD_PRELOAD, see ilrepro.mkl_vendor)", vendor or "non-Intel")
    else:
        try:
            ctypes.CDLL(str(_build()), mode=os.RTLD_GLOBAL | os.RTLD_NOW)
            status = "applied"
            log.info("ilrepro: MKL told this %s CPU is an Intel one, so it takes its vectorised kernels", vendor)
        except OSError as err:
            status = f"failed: {err}"
            log.warning("ilrepro: MKL runs its generic kernels on this %s CPU (the vendor shim could not be had: %s)", vendor, err)
    return status


def code_path() -> int | None:
    """MKL's code path in this process (``mkl_serv_cpu_detect()``: 0 the generic kernels, higher the
    vectorised ones, 7 AVX-512 on the machines measured); None where torch has no MKL."""
    import torch  # for its library; by now apply() has run

    lib_dir = Path(torch.__file__).parent / "lib"
    try:
        lib = ctypes.CDLL(str(lib_dir / "libtorch_cpu.so"))
        return int(lib.mkl_serv_cpu_detect())
    except (OSError, AttributeError):
        return None
