"""Image folders that stay on disk: a file index, decoded, resized and augmented on the fly.

A domain read from an image folder holds an :class:`ImageFiles` where a feature table holds a tensor. No image
is decoded until a batch needs it: DataLoader workers open the file, resize (and, for training, augment) and
normalise it, so a process holds the names of the files, never the dataset. The folder is a local path or a
storage URI (``s3://``, ``gs://``, ``file://`` ...) read through ``pyarrow.fs``, so every node of a cluster
reads the same files without copying them.

:func:`input_batches` and :func:`eval_batches` are the loop's one way to get batches of a domain's inputs,
whether those are a tensor (tables, built-in digits, cached backbone features) or files.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from .errors import InputError, first_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Training-time augmentation of image folders (evaluation always sees the whole image, resized). A crop keeps
# at least a quarter of the image: the field's usual (0.08, 1) suits ImageNet-length training, not a search's
# few thousand steps per trial.
AUGMENTATIONS = {
    "crop-flip": "random resized crop (25-100% of the area) + horizontal flip",
    "crop": "random resized crop (25-100% of the area), no flip (text, digits, oriented scenes)",
    "none": "the evaluation transform: resize only",
}
DEFAULT_AUGMENT = "crop-flip"
DEFAULT_IMAGE_SIZE = 224  # what ImageNet-pretrained backbones were trained at
CROP_SCALE = (0.25, 1.0)


def check_augment(value: object) -> str:
    if value not in AUGMENTATIONS:
        raise InputError("augment", f"expected one of {', '.join(AUGMENTATIONS)}, got {value!r}")
    return str(value)


def is_storage_uri(path: str) -> bool:
    return "://" in path


@functools.cache
def _filesystem(uri: str):  # noqa: ANN202 - a pyarrow FileSystem, imported lazily
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)[0]


def _open(path: str, storage: str | None) -> io.BufferedIOBase:
    if storage is None:
        return open(path, "rb")
    return io.BytesIO(_filesystem(storage).open_input_file(path).readall())


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """The images of a domain, by file: ``files`` are local paths, or paths inside ``storage``'s filesystem.

    Indexing with a slice, an index array or a boolean mask gives the subset (splits, few-shot samples);
    :meth:`load` decodes. ``shape`` is what the decoded stack would be: ``[N, 3, size, size]``.
    """

    files: tuple[str, ...]
    size: int
    storage: str | None = None  # the folder's URI when it is not a local path
    mean: tuple[float, ...] = IMAGENET_MEAN  # per-channel normalisation: the backbone's (:meth:`normalised`)
    std: tuple[float, ...] = IMAGENET_STD

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), 3, self.size, self.size))

    def __getitem__(self, index: slice | np.ndarray | torch.Tensor | Sequence[int]) -> ImageFiles:
        if isinstance(index, slice):
            chosen = self.files[index]
        else:
            positions = np.arange(len(self.files))[np.asarray(index)]
            chosen = tuple(self.files[i] for i in positions.reshape(-1))
        return replace(self, files=chosen)

    def normalised(self, mean: tuple[float, ...], std: tuple[float, ...]) -> ImageFiles:
        """These files decoded with ``mean`` and ``std``: one object per normalisation, so domains that share
        files (the transductive target's train and val) keep sharing them, and their fingerprint, after it."""
        key = (tuple(mean), tuple(std))
        if key == (self.mean, self.std):
            return self
        renormalised = self.__dict__.setdefault("_renormalised", {})
        if key not in renormalised:
            renormalised[key] = replace(self, mean=key[0], std=key[1])
        return renormalised[key]

    def __getstate__(self) -> dict:  # not the cached fingerprint or renormalised copies
        return {"files": self.files, "size": self.size, "storage": self.storage, "mean": self.mean, "std": self.std}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @functools.cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha1(f"{self.size}|{self.storage}|{self.mean}|{self.std}|{len(self.files)}".encode())
        for path, (size, mtime) in zip(self.files, self._stats()):
            digest.update(f"{path}|{size}|{mtime}\n".encode())
        return digest.hexdigest()[:16]

    def fingerprint(self) -> str:
        """A hash of the file names, sizes and modification times, the decoded size and the normalisation: the
        content changes only with those, and reading every file to hash it would cost as much as decoding it."""
        return self._fingerprint

    def _stats(self) -> Iterator[tuple[int, int]]:
        if self.storage is None:
            import os

            for path in self.files:
                stat = os.stat(path)
                yield stat.st_size, stat.st_mtime_ns
        else:
            for info in _filesystem(self.storage).get_file_info(list(self.files)):
                yield info.size, int(info.mtime_ns or 0)

    def decode(self, position: int, augment: str = "none") -> torch.Tensor:
        """One image as a normalised float32 ``[3, size, size]`` tensor."""
        from PIL import Image

        path = self.files[position]
        try:
            with _open(path, self.storage) as stream, Image.open(stream) as image:
                rgb = image.convert("RGB")
        except Exception as error:  # PIL's format plugins raise many types for a truncated or corrupt file
            raise OSError(f"cannot decode image {path} ({first_line(error)})") from None
        return _transform(self.size, augment, self.mean, self.std)(rgb)

    def load(self, positions: Iterable[int] | None = None) -> torch.Tensor:
        """Decode ``positions`` (default: all) with the evaluation transform into one tensor, in this process."""
        chosen = range(len(self)) if positions is None else [int(i) for i in positions]
        return torch.stack([self.decode(i) for i in chosen]) if chosen else torch.empty(0, *self.shape[1:])


@functools.cache
def _transform(size: int, augment: str, mean: tuple[float, ...], std: tuple[float, ...]):  # noqa: ANN202
    from torchvision.transforms import v2

    if augment == "none":
        # Resize the shorter side and crop the centre: a square image is resized whole, a wide one is not
        # distorted.
        geometry = [v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True), v2.CenterCrop(size)]
    else:
        geometry = [v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True)]
        if augment == "crop-flip":
            geometry.append(v2.RandomHorizontalFlip())
    return v2.Compose([*geometry, v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(mean, std)])


def list_image_folder(location: str, field: str, size: int) -> tuple[ImageFiles, np.ndarray | None]:
    """The images of a folder (local path or storage URI), to be decoded at ``size`` px, and their class names.

    A folder with subfolders is an ImageFolder layout (the first level names the class, files below it at
    any depth); a folder of image files alone is unlabeled. Local files have their headers read, so an
    unreadable or oversized image is reported now, with the field, rather than inside a trial.
    """
    from pyarrow import fs

    storage = location if is_storage_uri(location) else None
    try:
        filesystem, base = fs.FileSystem.from_uri(location) if storage else (fs.LocalFileSystem(), location)
        infos = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
    except Exception as error:  # pyarrow raises OSError, ValueError or ArrowInvalid for a bad URI or no access
        raise InputError(field, f"cannot list {location} ({first_line(error)}); expected a readable folder of "
                         "images") from None
    base = base.rstrip("/")
    entries = []
    for info in infos:
        if info.type != fs.FileType.File or not info.path.lower().endswith(IMAGE_EXTENSIONS):
            continue
        parts = info.path[len(base) + 1 :].split("/")
        entries.append((parts, info.path))
    class_dirs = sorted({parts[0] for parts, _ in entries if len(parts) > 1 and not parts[0].startswith(".")})
    if class_dirs:
        chosen = sorted((parts[0], path) for parts, path in entries if len(parts) > 1 and parts[0] in class_dirs)
    else:
        chosen = sorted((None, path) for parts, path in entries if len(parts) == 1)
    if not chosen:
        raise InputError(
            field,
            f"{location} contains no readable images; expected class subfolders of image files "
            f"({', '.join(IMAGE_EXTENSIONS)}) or, for an unlabeled target, image files directly inside",
        )
    paths = tuple(path for _, path in chosen)
    if storage is None:
        for path in paths:
            _check_header(path, field)
    labels = np.array([label for label, _ in chosen], dtype=str) if class_dirs else None
    return ImageFiles(paths, size, storage), labels


def _check_header(path: str, field: str) -> None:
    from PIL import Image

    try:
        # PIL only warns for an image of more than MAX_IMAGE_PIXELS (it refuses twice that): decoding one can
        # exhaust memory, so both are refused. Opening reads the header only.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.open(path).close()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(field, f"image {path} is too large to decode safely ({first_line(error)}); expected an "
                         f"image of at most {Image.MAX_IMAGE_PIXELS} pixels") from None
    except Exception as error:
        raise InputError(field, f"cannot read image {path} ({first_line(error)}); expected an image file") from None


# --- batches --------------------------------------------------------------------------------------------------


class _Decoded(torch.utils.data.Dataset):
    """Decoded images. An augmented one is indexed by ``(seed, position)`` and draws its crop from that seed (see
    :func:`_draw_seeds`), so the same trial augments alike in any number of worker processes."""

    def __init__(self, images: ImageFiles, augment: str):
        self.images, self.augment = images, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int | tuple[int, int]) -> torch.Tensor:
        if self.augment == "none":
            return self.images.decode(item)
        seed, position = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.images.decode(position, self.augment)


def _draw_seeds(batches: Iterable[Sequence[int]], seed: int) -> list[list[tuple[int, int]]]:
    """Each batch's ``(augmentation seed, position)`` pairs: the seed follows the loader's seed, the position and
    how often the loader drew it before (a second pass within an epoch crops anew), counted here, in the
    trial's process, rather than in whichever worker decodes the batch."""
    draws: collections.Counter[int] = collections.Counter()
    plan = []
    for batch in batches:
        items = []
        for position in batch:
            draws[position] += 1
            items.append(((seed * 1_000_003 + position) * 1_009 + draws[position], position))
        plan.append(items)
    return plan


@dataclass(frozen=True)
class Loading:
    """How a trial decodes image files: DataLoader worker processes (0: in the trial's own process), training
    augmentation, and pinned memory for a copy to the GPU. Tensor inputs ignore it."""

    workers: int = 0
    augment: str = DEFAULT_AUGMENT
    pin_memory: bool = False
    # The largest batch of decoded images: an evaluation batch of 1,024 images at 224 px would take 600 MB
    # before the network's activations.
    image_batch: int = 64


IN_PROCESS = Loading()


def _loader(images: ImageFiles, batches: Iterable[Sequence[int]], augment: str, loading: Loading,
            seed: int) -> torch.utils.data.DataLoader:
    # Built here, before the workers fork, so they inherit it instead of each importing torchvision again.
    _transform(images.size, augment, images.mean, images.std)
    plan = [list(batch) for batch in batches] if augment == "none" else _draw_seeds(batches, seed)
    return torch.utils.data.DataLoader(
        _Decoded(images, augment), batch_sampler=plan, num_workers=loading.workers,
        pin_memory=loading.pin_memory, prefetch_factor=2 if loading.workers else None,
    )


def input_batches(x: torch.Tensor | ImageFiles, batches: Iterable[torch.Tensor], device: torch.device,
                  loading: Loading, seed: int) -> Iterator[torch.Tensor]:
    """The training inputs of each index batch, on ``device``: rows of ``x`` (already on the device), or the
    files decoded and augmented by ``loading``'s workers."""
    if isinstance(x, ImageFiles):
        indices = [b.tolist() for b in batches]
        for batch in _loader(x, indices, loading.augment, loading, seed):
            yield batch.to(device, non_blocking=loading.pin_memory)
    else:
        for index in batches:
            yield x[index.to(x.device)]


def eval_batches(x: torch.Tensor | ImageFiles, batch_size: int, device: torch.device,
                 loading: Loading = IN_PROCESS) -> Iterator[torch.Tensor]:
    """``x`` in order, ``batch_size`` at a time, on ``device``, with the evaluation transform for files."""
    if isinstance(x, ImageFiles):
        batch_size = min(batch_size, loading.image_batch)
        chunks = [list(range(i, min(i + batch_size, len(x)))) for i in range(0, len(x), batch_size)]
        for batch in _loader(x, chunks, "none", loading, 0):
            yield batch.to(device, non_blocking=loading.pin_memory)
    else:
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size].to(device)


def gather(x: torch.Tensor | ImageFiles, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of ``x`` as a tensor (files decoded with the evaluation transform, in this process)."""
    return x.load(index.tolist()) if isinstance(x, ImageFiles) else x[index]


def pair_batches(x: torch.Tensor | ImageFiles, i: torch.Tensor, j: torch.Tensor, batch_size: int,
                 device: torch.device, loading: Loading = IN_PROCESS) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows ``i[k]`` and ``j[k]`` of ``x``, ``batch_size`` pairs at a time, on ``device`` (files decoded by
    ``loading``'s workers with the evaluation transform)."""
    if isinstance(x, ImageFiles):
        size = max(1, min(batch_size, loading.image_batch // 2))
        chunks = [torch.cat([i[k : k + size], j[k : k + size]]).tolist() for k in range(0, len(i), size)]
        for batch in _loader(x, chunks, "none", loading, 0):
            half = len(batch) // 2
            yield batch[:half].to(device), batch[half:].to(device)
    else:
        for k in range(0, len(i), batch_size):
            yield x[i[k : k + batch_size]].to(device), x[j[k : k + batch_size]].to(device)
