#!/usr/bin/env bash
# Issue 17's GPU measurements, for a session with a lent GPU (one H200-class device), in under 10 minutes:
#   bash workflow/scripts/gpu_sweep_check.sh [OUT_DIR]        (from the repository root; OUT_DIR: $OUT or results/gpu)
# 1. the CUDA tests (stacked sweep with CUDA graph == each member alone; graph == eager stacked step);
# 2. the stacked E1 CIFAR-10 sweep benchmark: per algorithm one job of 30 members (6 learning rates x
#    5 seeds, 3072-1024-1024-1024-10, B=1, evaluation every 50 updates on 10k images) on random data of
#    CIFAR-10's shape, 2,000 timed updates extrapolated to 50,000, IL-SGD also without the graph; then
#    the paper plan with every training on the GPU, calibrated from these measurements (GPU-hours).
# Writes OUT_DIR/{cuda_tests.txt, sweep_bench.csv, sweep_bench.json, sweep_bench.txt}.
set -uo pipefail
out="${1:-${OUT:-results/gpu}}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
timeout 180 python -m pytest tests/test_cuda.py -q -rs 2>&1 | tail -30 | tee "$out/cuda_tests.txt"
timeout 400 python -m ilrepro sweep-bench --out-dir "$out" ${SWEEP_CONFIG:+--config "$SWEEP_CONFIG"} 2>&1 | tee "$out/sweep_bench.txt"
