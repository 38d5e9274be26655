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

import contextlib
import dataclasses
import gzip
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

__all__ = ["Dataset", "DataSize", "DatasetError", "DATASETS", "LOOKS", "SIZES", "check_labels", "load_configured", "load_dataset", "read_idx", "recording_files"]


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
    # every file read: path, sha256, and how its identity was checked (see :func:`load_dataset`)
    files: tuple[dict[str, str], ...] = ()

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
            self.files,
        )


# --------------------------------------------------------------------------------------------- digits
def _digits_csv() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        csv = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
        if csv.exists():
            return csv
    return None


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 x 64 pixels in 0..16, labels). Read straight from the CSV that ships
    inside scikit-learn, which saves importing scikit-learn (seconds) in every training job; falls back
    to ``sklearn.datasets.load_digits`` if the file is not where it has always been."""
    csv = _digits_csv()
    if csv is not None:
        raw = np.loadtxt(csv, delimiter=",", dtype=np.float64)
        return raw[:, :-1], raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target


def _load_digits(data_dir: Path, download: bool, verify: bool) -> Dataset:
    pixels, labels = _digits_arrays()
    x = torch.tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(labels, dtype=torch.int64)
    # A fixed split (independent of the run's seed): 80 % train, 20 % test.
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    csv = _digits_csv()
    shipped = "shipped inside scikit-learn"
    files = (_record(csv, shipped),) if csv else ({"path": "sklearn.datasets.load_digits", "identity": shipped},)
    return Dataset("digits", x[train], y[train], x[test], y[test], 10, files)


# ----------------------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), checking its header against its size."""
    try:
        return _parse_idx(path, path.read_bytes())
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc


def _parse_idx(path: Path, blob: bytes) -> np.ndarray:
    """The array in an IDX file's bytes ``blob`` (gzipped if ``path`` ends in .gz)."""
    try:
        raw = gzip.decompress(blob) if path.suffix == ".gz" else blob
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
_ROLES = {"train_x": "train images", "train_y": "train labels", "test_x": "test images", "test_y": "test labels"}
_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}

# The published checksums (MD5, as torchvision lists them) of the distributed .gz files. A .gz made by
# another compressor (Debian's package, a re-zipped copy) or an unzipped file has other bytes for the
# same content: those are checked by their content's fingerprint below instead.
PUBLISHED_MD5 = {
    "mnist": {"train_x": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_y": "d53e105ee54ea40749a09fcbcd1e9432",
              "test_x": "9fb629c4189551a2d022fa330f9573f3", "test_y": "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion_mnist": {"train_x": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_y": "25c81989df183df01b3e8a0aad5dffbe",
                      "test_x": "bef4ecab320f06d8554ea6380940ec79", "test_y": "bb300cfdad3c16e7a12a480ee83cd310"},
}


@dataclass(frozen=True)
class Look:
    """A content fingerprint of one IDX file: its count, and the examples per class (labels, exact) or
    the mean pixel / 255 (images, to within :data:`PIXEL_MEAN_TOL`). MNIST and Fashion-MNIST share
    file names and shapes; their fingerprints differ in every file."""

    n: int
    label_counts: tuple[int, ...] | None = None
    pixel_mean: float | None = None

    def matches(self, arr: np.ndarray) -> bool:
        if len(arr) != self.n:
            return False
        if self.label_counts is not None:
            return arr.ndim == 1 and tuple(np.bincount(arr.astype(np.int64), minlength=10).tolist()) == self.label_counts
        return arr.ndim == 3 and abs(float(arr.mean()) / 255.0 - float(self.pixel_mean)) <= PIXEL_MEAN_TOL


PIXEL_MEAN_TOL = 0.002
UNCHECKED = "not checked (data.verify: false)"
LOOKS: dict[str, dict[str, Look]] = {
    "mnist": {
        "train_x": Look(60_000, pixel_mean=0.1307),
        "train_y": Look(60_000, label_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)),
        "test_x": Look(10_000, pixel_mean=0.1325),
        "test_y": Look(10_000, label_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)),
    },
    "fashion_mnist": {
        "train_x": Look(60_000, pixel_mean=0.2860),
        "train_y": Look(60_000, label_counts=(6000,) * 10),
        "test_x": Look(10_000, pixel_mean=0.2868),
        "test_y": Look(10_000, label_counts=(1000,) * 10),
    },
}


def _describe(arr: np.ndarray) -> str:
    if arr.ndim == 1:
        return f"{len(arr)} labels, {np.bincount(arr.astype(np.int64)).tolist()} per class"
    return f"{len(arr)} images, mean pixel {float(arr.mean()) / 255:.4f}"


def _check_identity(name: str, part: str, path: Path, arr: np.ndarray, md5: str) -> str:
    """That ``path`` holds data set ``name``'s ``part``: its published checksum, else its content's
    fingerprint. Returns how it was checked; raises :class:`DatasetError` saying what it looks like."""
    if PUBLISHED_MD5[name][part] == md5:
        return "published md5"
    if LOOKS[name][part].matches(arr):
        return "content fingerprint"
    like = [f"{_TITLES[other]}'s {_ROLES[p]}" for other, looks in LOOKS.items() for p, look in looks.items() if look.matches(arr)]
    instead = f"it looks like {like[0]}" if like else f"it holds {_describe(arr)}"
    raise DatasetError(
        f"{path} is not {_TITLES[name]}'s {_ROLES[part]}: {instead} (expected {_describe_look(LOOKS[name][part])}). "
        f"Put {_TITLES[name]}'s own files there, or set `data.verify: false` to train on files of your own."
    )


def _describe_look(look: Look) -> str:
    if look.label_counts is not None:
        return f"{look.n} labels, {list(look.label_counts)} per class"
    return f"{look.n} images, mean pixel {look.pixel_mean:.4f}"


def _record(path: Path, identity: str, blob: bytes | None = None) -> dict[str, str]:
    """What meta.json says of one file read: its path, sha256, and how its identity was checked."""
    blob = Path(path).read_bytes() if blob is None else blob
    return {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(blob).hexdigest(), "identity": identity}


def check_labels(path: Path | str, labels: np.ndarray, n_classes: int) -> None:
    """Labels are class indices 0..n_classes-1; the first one that is not names its file and place."""
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        i = int(bad[0])
        raise DatasetError(
            f"{path}: label {int(labels[i])} at index {i} is not a class of this data set (0..{n_classes - 1}); "
            f"{len(bad)} label(s) out of range"
        )


def _find_idx_dir(name: str, candidates: list[Path]) -> Path | None:
    """The first candidate directory holding all four IDX files; one holding only some is an error."""
    for d in candidates:
        have = {k: (d / n).exists() or (d / (n + ".gz")).exists() for k, n in _IDX_FILES.items()}
        if all(have.values()):
            return d
        if any(have.values()):
            missing = [_IDX_FILES[k] for k, ok in have.items() if not ok]
            raise DatasetError(
                f"{d} holds only some of {_TITLES[name]}'s IDX files: missing {', '.join(missing)} (optionally .gz). "
                "Complete it, or remove the others so that the next place is searched."
            )
    return None


def _idx_path(d: Path, stem: str) -> Path:
    return d / stem if (d / stem).exists() else d / (stem + ".gz")


def _mnist_like(name: str, tv_name: str, system_dirs: tuple[str, ...]) -> Callable[[Path, bool, bool], Dataset]:
    def load(data_dir: Path, download: bool, verify: bool) -> Dataset:
        candidates = [data_dir / name, data_dir / tv_name / "raw", data_dir] + [Path(p) for p in system_dirs]
        found = _find_idx_dir(name, candidates)
        if found is None and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(data_dir), train=True, download=True)
            getattr(torchvision.datasets, tv_name)(str(data_dir), train=False, download=True)
            found = _find_idx_dir(name, candidates)
        if found is None:
            hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion_mnist" else ""
            raise DatasetError(
                f"data set '{name}' not found: looked for IDX files ({', '.join(_IDX_FILES.values())}, "
                f"optionally .gz) in {', '.join(str(c) for c in candidates)}. Downloads are disabled; "
                f"set `data.download: true` in the config (needs a network){hint}, or copy the files there."
            )
        arr, files = {}, []
        for k, stem in _IDX_FILES.items():
            path = _idx_path(found, stem)
            try:
                blob = path.read_bytes()
            except OSError as exc:
                raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc
            arr[k] = _parse_idx(path, blob)
            if k.endswith("_y"):
                check_labels(path, arr[k], 10)
            how = _check_identity(name, k, path, arr[k], hashlib.md5(blob).hexdigest()) if verify else UNCHECKED
            files.append(_record(path, how, blob))
        for part in ("train", "test"):
            if len(arr[f"{part}_x"]) != len(arr[f"{part}_y"]):
                raise DatasetError(f"{found}: {part} images and labels differ in count")
        as_x = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)  # noqa: E731
        as_y = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
        return Dataset(name, as_x(arr["train_x"]), as_y(arr["train_y"]), as_x(arr["test_x"]), as_y(arr["test_y"]), 10, tuple(files))

    return load


# ------------------------------------------------------------------------------------------- CIFAR-10
# The published checksums (MD5) of CIFAR-10's python batches, as torchvision lists them.
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
}


def _load_cifar10(data_dir: Path, download: bool, verify: bool) -> Dataset:
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

    def batch(f: Path, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
        try:
            d = pickle.loads(blob, encoding="latin1")
            return np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(d["labels"])
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
            raise DatasetError(f"{f} is corrupt ({exc}); delete it and fetch CIFAR-10 again") from exc

    records, batches = [], []
    for f in files:  # each file read once: its checksum, its record and its arrays from the same bytes
        blob = f.read_bytes()
        md5 = hashlib.md5(blob).hexdigest()
        if verify and md5 != CIFAR10_MD5[f.name]:
            raise DatasetError(
                f"{f} is not CIFAR-10's {f.name}: its md5 is {md5}, the published one {CIFAR10_MD5[f.name]}. "
                "Fetch CIFAR-10 again, or set `data.verify: false` to train on files of your own."
            )
        records.append(_record(f, "published md5" if verify else UNCHECKED, blob))
        batches.append(batch(f, blob))
        check_labels(f, batches[-1][1], 10)
    tr, te = batches[:5], batches[5]
    x_tr = torch.from_numpy(np.concatenate([b[0] for b in tr]).astype(np.float32) / 255.0)
    y_tr = torch.from_numpy(np.concatenate([b[1] for b in tr]).astype(np.int64))
    x_te = torch.from_numpy(te[0].astype(np.float32) / 255.0)
    return Dataset("cifar10", x_tr, y_tr, x_te, torch.from_numpy(te[1].astype(np.int64)), 10, tuple(records))


# name -> loader(data_dir, download, verify)
DATASETS: dict[str, Callable[[Path, bool, bool], Dataset]] = {
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

_CACHE: dict[tuple[str, str, bool, tuple[float, float], bool], Dataset] = {}


_RECORDERS: list[list[dict[str, str]]] = []


@contextlib.contextmanager
def recording_files() -> Iterator[list[dict[str, str]]]:
    """Collects, once each, the files (path, sha256, identity check) of every data set that
    :func:`load_dataset` returns within the block, from the cache or not: what a job read."""
    files: list[dict[str, str]] = []
    _RECORDERS.append(files)
    try:
        yield files
    finally:
        _RECORDERS.remove(files)


def default_data_dir() -> Path:
    return Path(os.environ.get("ILREPRO_DATA", "data"))


def load_configured(name: str, data: dict[str, Any]) -> Dataset:
    """:func:`load_dataset` as a config's ``data:`` block says (dir, download, pixel_range, verify)."""
    return load_dataset(name, data.get("dir"), bool(data.get("download", False)), tuple(data.get("pixel_range", (0.0, 1.0))),
                        bool(data.get("verify", True)))


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    download: bool = False,
    pixel_range: tuple[float, float] = (0.0, 1.0),
    verify: bool = True,
) -> Dataset:
    """Load a registered data set once per process (cached), pixels rescaled to ``pixel_range``.

    Every file read is checked to be the data set's own (``verify``): MNIST's, Fashion-MNIST's and
    CIFAR-10's by their published checksums or, for a file whose bytes differ from the published ones
    (an unzipped or re-zipped copy), by its content's fingerprint (:data:`LOOKS`); labels are checked to
    be classes. ``Dataset.files`` records the path, sha256 and check of every file read."""
    if name not in DATASETS:
        raise DatasetError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
    d = Path(data_dir) if data_dir is not None else default_data_dir()
    key = (name, str(d), download, tuple(pixel_range), verify)
    if key not in _CACHE:
        ds = DATASETS[name](d, download, verify)
        if not verify and name != "digits":
            print(f"data: {name}'s files are not checked to be {name}'s own (data.verify: false)", file=sys.stderr, flush=True)
        lo, hi = pixel_range
        if (lo, hi) != (0.0, 1.0):
            ds = dataclasses.replace(ds, train_x=ds.train_x * (hi - lo) + lo, test_x=ds.test_x * (hi - lo) + lo)
        _CACHE[key] = ds
    for files in _RECORDERS:
        files.extend(f for f in _CACHE[key].files if f not in files)
    return _CACHE[key]
