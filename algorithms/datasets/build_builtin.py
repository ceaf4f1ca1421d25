"""Maintainer script: rebuild the built-in ``.npz`` files of this folder from the shared raw data.

Run by hand, never at run time (it needs scipy, which the service does not)::

    python algorithms/datasets/build_builtin.py [--data /work/shared/data] [--only amazon_review_400 ...]

It checks the sha256 of every raw file against the PROVENANCE notes before converting, so a rebuilt npz
always comes from the exact files those notes describe.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[2] / "shared" / "data"

# sha256 of the raw files (by folder of the shared data), as listed in the PROVENANCE_*.md notes here.
SHA256 = {
    "mnist_t10k": {
        "t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
        "t10k-labels-idx1-ubyte.gz": "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
    },
    "usps_16x16": {
        "zip.train.gz": "66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16",
        "zip.test.gz": "8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f",
    },
    "office_caltech10_surf": {
        "amazon_SURF_L10.mat": "df32548b994e18d364c99e1f317e1fae100597259f0423a41b90f4f68187bb1f",
        "Caltech10_SURF_L10.mat": "4f9334c8ced489d5054de97a5fd51a61f017f3bcd1f38c9a85c6d78cb9d7bda5",
        "webcam_SURF_L10.mat": "a6a9c78b4b7181dfbb58bcfd351d4ebd737f171c31247b8884948aa156d3f700",
        "dslr_SURF_L10.mat": "44d673c68e1d07b837893aa74dba3b986e4a6cc3fd66f0dd357683bdef059216",
    },
    "amazon_review_400": {
        "books_400.mat": "7a53b54f0c0e81e7ee4774d762a927399cede9a802a2409732ba00cc1c23a17a",
        "dvd_400.mat": "13a71d399f9c7ae57064952979c830455057ffd0a8da73f2c9075338d64d98ce",
        "elec_400.mat": "f1dd6e01c1eed956d3abe6493a6bb5efc95e6585b8b9b2d856c0c07e12893a35",
        "kitchen_400.mat": "b1f4e5ddfbd7b37ad2638fccbf83bd8558abf63b3e8d69a9d5bca77b1a49fed5",
    },
}

SURF_FILES = {
    "A": "amazon_SURF_L10.mat",
    "C": "Caltech10_SURF_L10.mat",
    "W": "webcam_SURF_L10.mat",
    "D": "dslr_SURF_L10.mat",
}

AMAZON_FILES = {
    "B": "books_400.mat",
    "D": "dvd_400.mat",
    "E": "elec_400.mat",
    "K": "kitchen_400.mat",
}
AMAZON_SIZES = {"B": (1000, 1000), "D": (1000, 999), "E": (1000, 998), "K": (1000, 999)}


def _checked(data: Path, folder: str, name: str) -> Path:
    path = data / folder / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[folder][name]:
        raise SystemExit(f"{path}: sha256 {digest} does not match the provenance note")
    return path


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def build_mnist(data: Path, out: Path) -> None:
    x = _idx(_checked(data, "mnist_t10k", "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28)
    y = _idx(_checked(data, "mnist_t10k", "t10k-labels-idx1-ubyte.gz"), 8)
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    np.savez_compressed(out / "mnist_t10k.npz", x=x, y=y)


def _usps_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    a = np.loadtxt(path)
    y = a[:, 0].astype(np.uint8)
    # Stored as [-1, 1]; map back to the 0..255 grey levels the values were scaled from.
    x = np.rint((a[:, 1:] + 1.0) / 2.0 * 255.0).clip(0, 255).astype(np.uint8).reshape(-1, 16, 16)
    return x, y


def build_usps(data: Path, out: Path) -> None:
    x_train, y_train = _usps_split(_checked(data, "usps_16x16", "zip.train.gz"))
    x_test, y_test = _usps_split(_checked(data, "usps_16x16", "zip.test.gz"))
    assert x_train.shape == (7291, 16, 16) and x_test.shape == (2007, 16, 16)
    np.savez_compressed(out / "usps.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def build_office_surf(data: Path, out: Path) -> None:
    import scipy.io

    arrays = {}
    for key, name in SURF_FILES.items():
        mat = scipy.io.loadmat(_checked(data, "office_caltech10_surf", name))
        fts, labels = mat["fts"], mat["labels"].ravel()
        # The counts are small non-negative integers; keep them exact in uint8 (checked, not assumed).
        assert fts.min() >= 0 and fts.max() <= 255 and np.array_equal(fts, np.rint(fts))
        assert labels.min() == 1 and labels.max() == 10
        arrays[f"x_{key}"] = fts.astype(np.uint8)
        arrays[f"y_{key}"] = (labels - 1).astype(np.uint8)
    np.savez_compressed(out / "office_caltech10_surf.npz", **arrays)


def _word_counts(fts: np.ndarray) -> np.ndarray:
    """Recover the integer word counts ``c`` of rows stored as ``c / c.sum()`` (checked bit for bit).

    For each row, the denominator is the smallest ``s`` with ``fts * s`` within 1e-6 of integers summing to ``s``;
    the row is accepted only if ``counts / s`` (one IEEE division per entry) gives back exactly the float64
    values of the file, so storing the counts is lossless.
    """
    counts = np.zeros(fts.shape, dtype=np.int64)
    for i, row in enumerate(fts):
        for s in range(1, 10_000):
            c = np.rint(row * s)
            if c.sum() == s and np.abs(row * s - c).max() < 1e-6:
                break
        else:
            raise SystemExit(f"row {i}: no integer counts c with c / c.sum() == the stored frequencies")
        if not np.array_equal(c / s, row):
            raise SystemExit(f"row {i}: counts / {s} does not reproduce the stored float64 values exactly")
        counts[i] = c
    return counts


def build_amazon_review(data: Path, out: Path) -> None:
    import scipy.io

    arrays = {}
    for key, name in AMAZON_FILES.items():
        mat = scipy.io.loadmat(_checked(data, "amazon_review_400", name))
        fts, labels = mat["fts"], mat["labels"].ravel()
        assert fts.shape == (sum(AMAZON_SIZES[key]), 400) and fts.dtype == np.float64
        assert tuple(np.bincount(labels, minlength=2)) == AMAZON_SIZES[key]
        # Every row is word counts divided by their sum; the counts (0-61) fit uint8 and give the rows back exactly.
        counts = _word_counts(fts)
        assert counts.max() <= 255 and counts.sum(axis=1).min() >= 1
        x = counts.astype(np.uint8)
        assert np.array_equal(x / x.sum(axis=1, keepdims=True, dtype=np.float64), fts)
        arrays[f"x_{key}"] = x
        arrays[f"y_{key}"] = labels.astype(np.uint8)
    np.savez_compressed(out / "amazon_review_400.npz", **arrays)


BUILDERS = {
    "mnist": build_mnist,
    "usps": build_usps,
    "office_surf": build_office_surf,
    "amazon_review_400": build_amazon_review,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared raw data folder")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the npz files")
    parser.add_argument(
        "--only",
        choices=sorted(BUILDERS),
        action="append",
        help="build only this file (repeatable); np.savez_compressed stamps the time, so a rebuild is never "
        "byte-identical: rebuild only what changed",
    )
    args = parser.parse_args()
    for name in args.only or BUILDERS:
        BUILDERS[name](args.data, args.out)
    for path in sorted(args.out.glob("*.npz")):
        print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
