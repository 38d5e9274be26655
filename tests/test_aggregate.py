"""ilrepro.aggregate: each run's rows carry what the figures group by (algorithm, data set, model)."""

from __future__ import annotations

import json

import pandas as pd

from ilrepro.aggregate import aggregate_runs


def test_aggregated_rows_name_their_data_set_and_model(tmp_path):
    paths = []
    for i, (dataset, model) in enumerate([("mnist", {"type": "cnn", "channels": [4]}), ("cifar10", {"hidden": [8]})]):
        m, j = tmp_path / f"{i}.parquet", tmp_path / f"{i}.json"
        pd.DataFrame({"experiment": [f"e{i}"], "algo": ["zil"], "lr": [0.1], "seed": [0], "update": [1], "test_acc": [0.5]}).to_parquet(m)
        spec = {"algorithm": "zil", "dataset": dataset, "model": model}
        j.write_text(json.dumps({"spec": spec, "updates_per_s": 1.0, "device": "cpu"}))
        paths.append((m, j))
    df = aggregate_runs([m for m, _ in paths], [j for _, j in paths])
    assert df[["experiment", "dataset", "model"]].values.tolist() == [["e0", "mnist", "cnn"], ["e1", "cifar10", "mlp"]]
