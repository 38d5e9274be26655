"""The CPU measurement behind ilrepro.train's stacking rule (STACK_MIN_MEMBERS, STACK_MAX_WORK):
model-updates/s of the update steps, members stacked (one vmapped step) vs one by one, for 2, 6, 12 and
30 members at B=1 and B=64, on the digits MLP 64-64-64-10 and 784-256-256-10 (random inputs; one torch
thread; each cell timed for about a second), and the CIFAR-10 MLP at B=1 with 6 members.

    PYTHONPATH=src python workflow/scripts/stacking_cpu_measure.py > stacking.jsonl
"""

from __future__ import annotations

import json
import time

import torch

from ilrepro.ensemble import Ensemble
from ilrepro.models import build_model

CELLS = [
    ("digits 64-64-64-10", (1, 8, 8), [64, 64], (1, 64), (2, 6, 12, 30)),
    ("784-256-256-10", (1, 28, 28), [256, 256], (1, 64), (2, 6, 12, 30)),
    ("3072-1024x3-10", (3, 32, 32), [1024, 1024, 1024], (1,), (6,)),
]
ALGORITHMS = [("bp_sgd", 0.01), ("il_sgd", 0.01), ("il_prox", 1.0)]


def rate(shape: tuple[int, int, int], hidden: list[int], algo: str, lr: float, batch: int, members: int, stacked: bool, seconds: float) -> float:
    param = "pre" if algo == "il_prox" else "post"
    nets = [build_model({"type": "mlp", "hidden": hidden}, shape, 10, param, s) for s in range(members)]
    ens = Ensemble(nets, algo, lr, None, stacked)
    xs = [torch.rand(batch, *shape) for _ in range(members)]
    ys = [torch.nn.functional.one_hot(torch.randint(0, 10, (batch,)), 10).float() for _ in range(members)]
    active = list(range(members))
    for _ in range(2):
        ens.step(xs, ys, active)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        ens.step(xs, ys, active)
        n += 1
    return members * n / (time.perf_counter() - t0)


def main() -> None:
    torch.set_num_threads(1)
    for model, shape, hidden, batches, sizes in CELLS:
        for algo, lr in ALGORITHMS:
            if model.startswith("3072") and algo == "il_prox":
                continue
            for batch in batches:
                for members in sizes:
                    secs = 3.0 if model.startswith("3072") else 1.0
                    alone, together = (rate(shape, hidden, algo, lr, batch, members, s, secs) for s in (False, True))
                    print(json.dumps({"model": model, "algo": algo, "B": batch, "M": members, "one_by_one": alone, "stacked": together,
                                      "gain": together / alone}), flush=True)


if __name__ == "__main__":
    main()
