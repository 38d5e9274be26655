"""The CUDA path of a stacked job: the captured step (CUDA graph) and the batched evaluation give each
member's result as trained alone. Runs only where torch sees a GPU; elsewhere each test is skipped with
the reason. (`device: auto` on a machine without one is checked on any CPU.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ilrepro.train import train

NO_GPU = "no CUDA device: torch.cuda.is_available() is False on this machine (the CUDA graph path is untested here)"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)

SPEC = dict(experiment="t", algo="a", dataset="digits", batch_size=1, updates=30, eval_every=5, model={"type": "mlp", "hidden": [12, 10]},
            track_path_length=True)


def test_auto_device_is_recorded():
    _, meta = train({**SPEC, "algorithm": "bp_sgd", "hparams": {}, "lr": 0.05, "seed": 0, "updates": 2, "eval_every": 2, "device": "auto"})
    assert meta["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


@needs_gpu
@pytest.mark.parametrize("name,lrs,hp", [("il_sgd", [0.01, 0.2, 1e4], {"T": 5}), ("il_prox", [0.1, 2.0, 50.0], {"T": 5}), ("bp_adam", [1e-3, 1e-2], {})])
def test_cuda_stacked_sweep_equals_each_member_alone(name, lrs, hp):
    spec = {**SPEC, "algorithm": name, "hparams": hp, "device": "cuda"}
    together, meta = train({**spec, "lrs": lrs, "seeds": [0, 1]})
    assert meta["vectorised"] and meta["batched_eval"] and meta["device"].startswith("cuda")
    # SGD (and no optimiser) replay a CUDA graph; Adam's bias correction changes every step: eager
    assert meta["cuda_graph"] == "captured" if name != "bp_adam" else meta["cuda_graph"].startswith("not applicable"), meta["cuda_graph"]
    alone = pd.concat([train({**spec, "lr": lr, "seed": s, "cuda_graph": False})[0] for lr in lrs for s in (0, 1)], ignore_index=True)
    assert together[["lr", "seed", "update", "status"]].equals(alone[["lr", "seed", "update", "status"]])
    for col in ("test_loss", "delta_norm", "path_length"):
        np.testing.assert_allclose(together[col], alone[col], rtol=1e-4, atol=1e-6, err_msg=col)


@needs_gpu
def test_cuda_graph_replays_the_eager_stacked_step():
    spec = {**SPEC, "algorithm": "il_sgd", "hparams": {"T": 5}, "device": "cuda", "lrs": [0.01, 0.1], "seeds": [0, 1, 2]}
    graph, mg = train(spec)
    eager, me = train({**spec, "cuda_graph": False})
    assert mg["cuda_graph"] == "captured" and me["cuda_graph"] == "off"
    np.testing.assert_allclose(graph["test_loss"], eager["test_loss"], rtol=1e-5, atol=1e-7)
