"""The data registry: embedded digits, IDX files on disk, and clear errors for missing/corrupt data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ilrepro.data import DatasetError, load_dataset, read_idx

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    data = header + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def _fake_mnist(d: Path, n_train: int = 12, n_test: int = 5, gz: bool = True) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    _write_idx(d / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), gz)
    _write_idx(d / f"train-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_train, dtype=np.uint8), gz)
    _write_idx(d / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), gz)
    _write_idx(d / f"t10k-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_test, dtype=np.uint8), gz)


def test_digits_embedded():
    ds = load_dataset("digits")
    assert ds.train_x.shape[1:] == (1, 8, 8) and ds.test_x.shape[1:] == (1, 8, 8)
    assert len(ds.train_y) + len(ds.test_y) == 1797
    assert 0.0 <= float(ds.train_x.min()) and float(ds.train_x.max()) <= 1.0
    assert set(ds.train_y.tolist()) == set(range(10))
    # the split is fixed: loading again gives the same test set
    again = load_dataset("digits", pixel_range=(-1.0, 1.0))
    torch.testing.assert_close(again.test_x, ds.test_x * 2 - 1)


def test_unknown_dataset_names_known_ones():
    with pytest.raises(DatasetError, match="unknown data set 'mnsit'.*digits"):
        load_dataset("mnsit")


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"'mnist' not found.*download: true"):
        load_dataset("mnist", tmp_path / "nowhere", download=False)


def test_missing_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"cifar10.*data_batch_1.*download: true"):
        load_dataset("cifar10", tmp_path, download=False)


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_idx_files_on_disk(tmp_path, layout):
    d = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path / "mnist"
    _fake_mnist(d, gz=layout == "flat")
    ds = load_dataset("mnist", tmp_path, verify=False)  # made-up files: not MNIST's own
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_x.shape == (5, 1, 28, 28)
    raw = read_idx(next(d.glob("train-images*")))
    torch.testing.assert_close(ds.train_x[:, 0], torch.from_numpy(raw.astype(np.float32) / 255))


def test_corrupt_idx_names_the_file(tmp_path):
    d = tmp_path / "mnist"
    _fake_mnist(d, gz=False)
    f = d / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte is truncated or corrupt"):
        load_dataset("mnist", tmp_path, verify=False)
    f.write_bytes(b"not an idx file at all")
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte is not an IDX file"):
        read_idx(f)


@pytest.mark.skipif(not FMNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
    ds = load_dataset("fashion_mnist", tmp_path / "empty")
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.test_y).tolist() == [1000] * 10


def test_digits_read_from_csv_equal_sklearn_loader():
    from sklearn.datasets import load_digits

    from ilrepro.data import _digits_arrays

    pixels, labels = _digits_arrays()
    ref = load_digits()
    assert np.array_equal(pixels, ref.data) and np.array_equal(labels, ref.target)
