"""ilrepro.mkl_vendor: MKL's vectorised kernels on non-Intel CPUs. Each case runs in a fresh process,
since what it changes happens before torch is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

_REPORT = ("import json, sys, ilrepro, torch\n"
           "from ilrepro import mkl_vendor\n"
           "torch.manual_seed(0); a = torch.rand(64, 256); w = torch.rand(256, 256)\n"
           "out = torch.mm(a, w.t())\n"
           "if len(sys.argv) > 1: torch.save(out, sys.argv[1])\n"
           "print(json.dumps({'status': mkl_vendor.status, 'code_path': mkl_vendor.code_path()}))\n")


def _run(code: str, tmp_path: Path, *args: str, **env: str) -> tuple[dict, str]:
    e = {**os.environ, "PYTHONPATH": SRC, "ILREPRO_CACHE": str(tmp_path / "cache"), **env}
    r = subprocess.run([sys.executable, "-c", code, *args], env=e, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def _mkl() -> bool:
    import torch

    return "BLAS_INFO=mkl" in torch.__config__.show()


needs_mkl = pytest.mark.skipif(sys.platform != "linux" or not _mkl(), reason="torch without MKL, or not Linux")


@needs_mkl
def test_shim_gives_a_code_path_no_lower_and_the_same_products(tmp_path):
    """Forced on (on an Intel CPU too), MKL's code path is at least the unpatched one -- on an AMD CPU
    with AVX2 strictly higher (the generic kernels are path 0) -- and its GEMM gives the same numbers
    to float rounding."""
    on, _ = _run(_REPORT, tmp_path, str(tmp_path / "on.pt"), ILREPRO_MKL_VENDOR="force")
    off, _ = _run(_REPORT, tmp_path, str(tmp_path / "off.pt"), ILREPRO_MKL_VENDOR="0")
    assert on["status"] == "applied" and off["status"] == "off: ILREPRO_MKL_VENDOR=0"
    assert on["code_path"] >= off["code_path"]
    from ilrepro.mkl_vendor import cpu_vendor

    flags = Path("/proc/cpuinfo").read_text()
    if cpu_vendor() == "AuthenticAMD" and " avx2" in flags:
        assert off["code_path"] == 0 and on["code_path"] > 0
    import torch

    a, b = torch.load(tmp_path / "on.pt"), torch.load(tmp_path / "off.pt")
    assert torch.allclose(a, b, rtol=1e-5, atol=0)
    assert (tmp_path / "cache" / "mkl_vendor").is_dir() and any((tmp_path / "cache" / "mkl_vendor").glob("*.so"))


@needs_mkl
def test_default_acts_only_off_intel(tmp_path):
    from ilrepro.mkl_vendor import cpu_vendor

    got, _ = _run(_REPORT, tmp_path)
    assert got["status"] == ("not needed: GenuineIntel" if cpu_vendor() == "GenuineIntel" else "applied")


def test_too_late_after_torch_is_said(tmp_path):
    got, err = _run("import json, torch, ilrepro\nfrom ilrepro import mkl_vendor\nprint(json.dumps({'status': mkl_vendor.status}))",
                    tmp_path, ILREPRO_MKL_VENDOR="force")
    assert got["status"].startswith("too late") and "import ilrepro first" in err


def test_no_compiler_falls_back_with_one_line(tmp_path):
    code = "import json, ilrepro\nfrom ilrepro import mkl_vendor\nimport torch\nprint(json.dumps({'status': mkl_vendor.status}))"
    got, err = _run(code, tmp_path, ILREPRO_MKL_VENDOR="force", CC=str(tmp_path / "no-such-cc"))
    if sys.platform != "linux":
        pytest.skip("the shim is for Linux")
    assert got["status"].startswith("failed:") and "no-such-cc" in got["status"]
    assert sum("vendor shim could not be had" in ln for ln in err.splitlines()) == 1


def test_environment_meta_records_it():
    from ilrepro.runtime import environment_meta

    blas = environment_meta("cpu")["blas"]
    assert set(blas) == {"mkl_vendor", "mkl_code_path"} and isinstance(blas["mkl_vendor"], str)


def test_blas_report_has_the_rates_and_the_vendor_fix():
    from ilrepro import mkl_vendor
    from ilrepro.compare.blas import blas_report

    r = blas_report()
    assert r["mm_gflops_1_thread"]["64x256x256"] > 0 and r["mkl_vendor"] == mkl_vendor.status
    if mkl_vendor.status == "applied":  # the "before": a fresh process without the shim
        assert r["without_vendor_fix"]["mkl_vendor"].startswith("off") and r["without_vendor_fix"]["mm_gflops_1_thread"]["64x256x256"] > 0
