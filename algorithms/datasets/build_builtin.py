"""Maintainer script: rebuild the built-in ``.npz`` files of this folder from the shared raw data.

Run by hand, never at run time (it needs scipy and h5py, which the service does not)::

    python algorithms/datasets/build_builtin.py [--data RAW_DIR] [--only amazon_review_400 ...]

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
    "office_caltech10_decaf6_DW": {
        "dslr_decaf6.mat": "42443f5e82e98cbe6304cacdba905e24c8430ed977b3d6b7b279f088b76e108f",
        "webcam_decaf6.mat": "e42207580fb1fadd3adba2504e1d8cff9620f464fca7536f9d7093f84c1459a3",
    },
    "mnist_usps_jda": {
        "MNIST_vs_USPS.mat": "7fbb67f14af7236e18a38dc8a0a836142361e9e720e4b763a5e2db511d306d6c",
    },
    "amazon_review_dann_5000": {
        "books_train.svmlight": "317f9a2ec34b81de770b63a84d8c5cc2dc16bd0be6e079d2ff5b5bad5213ea19",
        "books_test.svmlight": "fe4605c7dcf0e0a9410fd2a32f247caaf9abb352cc6e4c3e0f400853163ad9c4",
        "dvd_train.svmlight": "95f602aa08bf6b55758f7b0b18df3882fe30acb11987ee60b6b4bb3c44cba733",
        "dvd_test.svmlight": "4fe1b1a15010f78d8d0c49fe362d35fd4677463a45f1ac02a9f410ae1e638060",
        "electronics_train.svmlight": "7d0061f03ff3827e4f8036b051b5e5828fddc0cd115aa5b212cd28d624dc14e4",
        "electronics_test.svmlight": "641783bc941839c3a111d3488a1b7e3bd820a61ec14a129e7429b47703aa961d",
        "kitchen_train.svmlight": "a70b5ebfe1413e0e16280360905f5c3b64389c435cd20c0165dc9d7f293b31b5",
        "kitchen_test.svmlight": "e1502b97a824eb12314be4447394fa736fecb781c0724e6529cd6733ac7ff6d8",
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

DECAF_FILES = {"D": "dslr_decaf6.mat", "W": "webcam_decaf6.mat"}

# Class counts of the JDA digit pair for the labels 1..10 (label k is digit k - 1), as in its PROVENANCE.txt.
JDA_COUNTS = {
    "M": [196, 227, 207, 202, 196, 179, 191, 206, 195, 201],
    "U": [352, 241, 165, 166, 166, 126, 139, 172, 129, 144],
}
# The USPS half is stored as integers k with x = k / JDA_USPS_DIVISOR (its values are multiples of 5e-7).
JDA_USPS_DIVISOR = 2e6

DANN_DOMAINS = {"B": "books", "D": "dvd", "E": "electronics", "K": "kitchen"}
DANN_FEATURES = 5000
# (negative, positive) reviews per domain and split, as in the PROVENANCE.txt of the shared folder.
DANN_SIZES = {
    ("B", "train"): (1000, 1000), ("B", "test"): (2201, 2264),
    ("D", "train"): (1000, 1000), ("D", "test"): (1779, 1807),
    ("E", "train"): (1000, 1000), ("E", "test"): (2824, 2857),
    ("K", "train"): (1000, 1000), ("K", "test"): (2991, 2954),
}  # fmt: skip


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


def build_office_decaf(data: Path, out: Path) -> None:
    import scipy.io

    arrays = {}
    for key, name in DECAF_FILES.items():
        mat = scipy.io.loadmat(_checked(data, "office_caltech10_decaf6_DW", name))
        feas, labels = mat["feas"], mat["labels"].ravel()
        assert feas.shape[1] == 4096 and feas.min() >= 0 and (feas > 0).any(axis=1).all()
        # The label sequence equals the SURF file's, sample for sample: label k is OFFICE_CLASSES[k - 1] here too.
        surf = scipy.io.loadmat(_checked(data, "office_caltech10_surf", SURF_FILES[key]))["labels"].ravel()
        assert np.array_equal(labels, surf)
        # The activations are float32 numbers widened to float64 (within a few float64 ulps): float32 keeps them.
        x = feas.astype(np.float32)
        assert np.all(np.abs(x - feas) <= 1e-15 * feas)
        arrays[f"x_{key}"] = x
        arrays[f"y_{key}"] = (labels - 1).astype(np.uint8)
    np.savez_compressed(out / "office_caltech10_decaf6.npz", **arrays)


def build_mnist_usps_jda(data: Path, out: Path) -> None:
    import h5py

    with h5py.File(_checked(data, "mnist_usps_jda", "MNIST_vs_USPS.mat"), "r") as mat:
        xs, xt, ys, yt = (mat[k][()] for k in ("Xs", "Xt", "Ys", "Yt"))
    # MATLAB keeps X as features x samples (one column per image) and y as a column; h5py reads the transposes,
    # so the rows are already samples. The class counts confirm the axis, and each 256-vector reshaped row-major
    # to 16x16 shows an upright digit (checked by rendering a few).
    assert xs.shape == (2000, 256) and xt.shape == (1800, 256) and ys.shape == (1, 2000) and yt.shape == (1, 1800)
    arrays = {}
    for key, labels in (("M", ys), ("U", yt)):
        counts = np.bincount(labels.ravel().astype(np.int64), minlength=11)
        assert counts[0] == 0 and counts[1:].tolist() == JDA_COUNTS[key]
        arrays[f"y_{key}"] = (labels.ravel() - 1).astype(np.uint8)
    # MNIST grey levels are exactly k / 256 (k = 0..255): store k, losslessly.
    mnist = np.rint(xs * 256.0)
    assert mnist.min() >= 0 and mnist.max() <= 255 and np.array_equal(mnist / 256.0, xs)
    arrays["x_M"], arrays["x_M_divisor"] = mnist.astype(np.uint8), np.float64(256.0)
    # USPS values are multiples of 5e-7 up to float64 noise: k / 2e6 gives them back to within 1.2e-16.
    usps = np.rint(xt * JDA_USPS_DIVISOR)
    assert usps.min() >= 0 and np.abs(usps / JDA_USPS_DIVISOR - xt).max() <= np.spacing(1.0) / 2
    arrays["x_U"], arrays["x_U_divisor"] = usps.astype(np.uint32), np.float64(JDA_USPS_DIVISOR)
    assert (xs > 0).any(axis=1).all() and (xt > 0).any(axis=1).all()  # every row has an L2 norm
    np.savez_compressed(out / "mnist_usps_jda.npz", **arrays)


def _svmlight(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, data, indices, indptr)`` of an svmlight file: one ``label index:value ...`` line per sample."""
    labels, data, indices, indptr = [], [], [], [0]
    for line in path.read_text().splitlines():
        label, *pairs = line.split()
        labels.append(int(label))
        for pair in pairs:
            index, value = pair.split(":")
            indices.append(int(index))
            data.append(float(value))
        indptr.append(len(indices))
    return np.array(labels), np.array(data), np.array(indices), np.array(indptr)


def build_amazon_dann(data: Path, out: Path) -> None:
    arrays = {}
    for key, name in DANN_DOMAINS.items():
        for split in ("train", "test"):
            path = _checked(data, "amazon_review_dann_5000", f"{name}_{split}.svmlight")
            labels, values, indices, indptr = _svmlight(path)
            assert set(labels.tolist()) == {-1, 1}
            assert tuple(np.bincount((labels > 0).astype(np.int64))) == DANN_SIZES[key, split]
            # Word / bigram counts: positive integers (at most 84), 0-based ids sorted within each row.
            assert values.min() >= 1 and values.max() <= 255 and np.array_equal(values, np.rint(values))
            assert indices.min() >= 0 and indices.max() < DANN_FEATURES
            # 3 electronics test reviews contain none of the 5000 features; they stay as all-zero rows.
            assert (np.diff(indptr) == 0).sum() == (3 if (key, split) == ("E", "test") else 0)
            row_start = np.zeros(len(indices) + 1, dtype=bool)
            row_start[indptr[:-1]] = True
            assert np.all((np.diff(indices) > 0) | row_start[1:-1])  # increasing ids, except where a row begins
            stem = f"x_{key}_{split}"
            arrays[f"{stem}_data"] = values.astype(np.uint8)
            arrays[f"{stem}_indices"] = indices.astype(np.uint16)
            arrays[f"{stem}_indptr"] = indptr.astype(np.int32)
            arrays[f"{stem}_shape"] = np.array([len(labels), DANN_FEATURES], dtype=np.int64)
            arrays[f"y_{key}_{split}"] = (labels > 0).astype(np.uint8)  # -1 / +1 -> 0 / 1, as (y + 1) / 2
    np.savez_compressed(out / "amazon_review_dann_5000.npz", **arrays)


BUILDERS = {
    "mnist": build_mnist,
    "usps": build_usps,
    "office_surf": build_office_surf,
    "amazon_review_400": build_amazon_review,
    "office_decaf": build_office_decaf,
    "mnist_usps_jda": build_mnist_usps_jda,
    "amazon_review_dann_5000": build_amazon_dann,
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
