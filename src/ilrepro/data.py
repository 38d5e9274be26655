"""Data-set registry: a name gives (train, test) tensors, loaded once.

* ``digits``: scikit-learn's embedded 8x8 digits (no download, the default for quick runs).
* ``mnist`` / ``fashion_mnist``: IDX files found on disk (a ``data_dir``, torchvision's
  ``<data_dir>/<Name>/raw`` layout, or Debian's ``/usr/share/datasets/fashion-mnist``), otherwise
  torchvision when downloads are allowed.
* ``cifar10``: torchvision's CIFAR-10 python batches under ``data_dir``.

Pixels are scaled to [0, 1] (``pixel_range: [-1, 1]`` gives the range Millidge et al. use), images are
kept as ``(N, C, H, W)`` float tensors and flattened by the model that needs it. Labels are int64.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

__all__ = ["Dataset", "DataSize", "DatasetError", "DATASETS", "SIZES", "load_dataset", "read_idx"]


class DatasetError(RuntimeError):
    """A data set is unknown, missing or corrupt; the message says which file and how to get it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    train_x: torch.Tensor  # (N, C, H, W), float32
    train_y: torch.Tensor  # (N,), int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def n_features(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def to(self, device: torch.device | str, dtype: torch.dtype) -> "Dataset":
        return Dataset(
            self.name,
            self.train_x.to(device=device, dtype=dtype),
            self.train_y.to(device),
            self.test_x.to(device=device, dtype=dtype),
            self.test_y.to(device),
            self.n_classes,
        )


# --------------------------------------------------------------------------------------------- digits
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 x 64 pixels in 0..16, labels). Read straight from the CSV that ships
    inside scikit-learn, which saves importing scikit-learn (seconds) in every training job; falls back
    to ``sklearn.datasets.load_digits`` if the file is not where it has always been."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        csv = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
        if csv.exists():
            raw = np.loadtxt(csv, delimiter=",", dtype=np.float64)
            return raw[:, :-1], raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target


def _load_digits(data_dir: Path, download: bool) -> Dataset:
    pixels, labels = _digits_arrays()
    x = torch.tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(labels, dtype=torch.int64)
    # A fixed split (independent of the run's seed): 80 % train, 20 % test.
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], 10)


# ----------------------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), checking its header against its size."""
    opener: Callable = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number); delete it and fetch it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: header says shape {shape} ({expected} bytes), "
            f"file has {len(raw)} bytes; delete it and fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _find_idx_dir(candidates: list[Path]) -> Path | None:
    for d in candidates:
        if all((d / n).exists() or (d / (n + ".gz")).exists() for n in _IDX_FILES.values()):
            return d
    return None


def _idx_path(d: Path, stem: str) -> Path:
    return d / stem if (d / stem).exists() else d / (stem + ".gz")


def _mnist_like(name: str, tv_name: str, system_dirs: tuple[str, ...]) -> Callable[[Path, bool], Dataset]:
    def load(data_dir: Path, download: bool) -> Dataset:
        candidates = [data_dir / name, data_dir / tv_name / "raw", data_dir] + [Path(p) for p in system_dirs]
        found = _find_idx_dir(candidates)
        if found is None and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(data_dir), train=True, download=True)
            getattr(torchvision.datasets, tv_name)(str(data_dir), train=False, download=True)
            found = _find_idx_dir(candidates)
        if found is None:
            hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion_mnist" else ""
            raise DatasetError(
                f"data set '{name}' not found: looked for IDX files ({', '.join(_IDX_FILES.values())}, "
                f"optionally .gz) in {', '.join(str(c) for c in candidates)}. Downloads are disabled; "
                f"set `data.download: true` in the config (needs a network){hint}, or copy the files there."
            )
        arr = {k: read_idx(_idx_path(found, stem)) for k, stem in _IDX_FILES.items()}
        for part in ("train", "test"):
            if len(arr[f"{part}_x"]) != len(arr[f"{part}_y"]):
                raise DatasetError(f"{found}: {part} images and labels differ in count")
        as_x = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)  # noqa: E731
        as_y = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
        return Dataset(name, as_x(arr["train_x"]), as_y(arr["train_y"]), as_x(arr["test_x"]), as_y(arr["test_y"]), 10)

    return load


# ------------------------------------------------------------------------------------------- CIFAR-10
def _load_cifar10(data_dir: Path, download: bool) -> Dataset:
    import pickle

    root = data_dir / "cifar-10-batches-py"
    files = [root / f"data_batch_{i}" for i in range(1, 6)] + [root / "test_batch"]
    if not all(f.exists() for f in files) and download:
        import torchvision

        torchvision.datasets.CIFAR10(str(data_dir), train=True, download=True)
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DatasetError(
            f"data set 'cifar10' not found: missing {', '.join(missing)}. Downloads are disabled; set "
            f"`data.download: true` in the config (needs a network) or unpack cifar-10-python.tar.gz into {data_dir}."
        )

    def batch(f: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="latin1")
            return np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(d["labels"])
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
            raise DatasetError(f"{f} is corrupt ({exc}); delete it and fetch CIFAR-10 again") from exc

    tr = [batch(f) for f in files[:5]]
    te = batch(files[5])
    x_tr = torch.from_numpy(np.concatenate([b[0] for b in tr]).astype(np.float32) / 255.0)
    y_tr = torch.from_numpy(np.concatenate([b[1] for b in tr]).astype(np.int64))
    x_te = torch.from_numpy(te[0].astype(np.float32) / 255.0)
    return Dataset("cifar10", x_tr, y_tr, x_te, torch.from_numpy(te[1].astype(np.int64)), 10)


DATASETS: dict[str, Callable[[Path, bool], Dataset]] = {
    "digits": _load_digits,
    "mnist": _mnist_like("mnist", "MNIST", ()),
    "fashion_mnist": _mnist_like("fashion_mnist", "FashionMNIST", ("/usr/share/datasets/fashion-mnist",)),
    "cifar10": _load_cifar10,
}



@dataclass(frozen=True)
class DataSize:
    """What is known of a data set without loading it: for the config checks and the cost model."""

    image_shape: tuple[int, int, int]
    n_classes: int
    n_train: int
    n_test: int


SIZES: dict[str, DataSize] = {
    "digits": DataSize((1, 8, 8), 10, 1438, 359),
    "mnist": DataSize((1, 28, 28), 10, 60_000, 10_000),
    "fashion_mnist": DataSize((1, 28, 28), 10, 60_000, 10_000),
    "cifar10": DataSize((3, 32, 32), 10, 50_000, 10_000),
}

_CACHE: dict[tuple[str, str, bool, tuple[float, float]], Dataset] = {}


def default_data_dir() -> Path:
    return Path(os.environ.get("ILREPRO_DATA", "data"))


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    download: bool = False,
    pixel_range: tuple[float, float] = (0.0, 1.0),
) -> Dataset:
    """Load a registered data set once per process (cached), pixels rescaled to ``pixel_range``."""
    if name not in DATASETS:
        raise DatasetError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
    d = Path(data_dir) if data_dir is not None else default_data_dir()
    key = (name, str(d), download, tuple(pixel_range))
    if key not in _CACHE:
        ds = DATASETS[name](d, download)
        lo, hi = pixel_range
        if (lo, hi) != (0.0, 1.0):
            ds = Dataset(ds.name, ds.train_x * (hi - lo) + lo, ds.train_y, ds.test_x * (hi - lo) + lo, ds.test_y, ds.n_classes)
        _CACHE[key] = ds
    return _CACHE[key]
