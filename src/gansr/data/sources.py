"""Where raw photos come from: the built-in ones, a folder's, and the provenance table ``sources.csv``.

``data/raw/`` holds ``images/<name>.png`` (every input decoded to 8-bit RGB)
and ``sources.csv`` (one row per image: where it came from, its licence, size,
hash, the original file's Pillow mode and bit depth, and any conversion
notes). The sources (``data.source``):

- ``builtin``: colour photographs that ship inside installed packages
  (scikit-image, scikit-learn, matplotlib), so ``dvc repro`` needs no network;
- ``folder``: every image under a user's folder, recursively;
- ``url``: an archive (or one image), fetched by :mod:`gansr.data.fetch`,
  whose images are then read exactly as a ``folder``'s are.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TypeVar

import pandas as pd

from gansr.errors import DataError
from gansr.layout import SOURCES_FILE

log = logging.getLogger("gansr")

SOURCES_COLUMNS = ["name", "group", "file", "origin", "licence", "width", "height", "sha256",
                   "phash", "mode", "bit_depth", "notes"]
_INT_COLUMNS = {"width", "height", "bit_depth"}
# An animated GIF counts as its first frame (noted, like every conversion).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
FOLDER_LICENCE = "user-supplied; licence not recorded (set data.licence)"
_T = TypeVar("_T")


@dataclass(frozen=True)
class BuiltinPhoto:
    """A colour photograph shipped inside an installed package."""

    name: str
    group: str  # photos of one scene share a group so they never straddle splits
    package: str  # importable package whose directory holds the file
    file: str  # path inside that package's directory
    origin: str
    licence: str


_MIDDLEBURY = ("Middlebury 2014 stereo data set (Scharstein et al., GCPR 2014), "
               "downsampled x4 by scikit-image; via skimage.data.stereo_motorcycle")
_MIDDLEBURY_LICENCE = "Middlebury stereo 2014 data set; cite Scharstein et al., GCPR 2014"
_FLICKR_CC_BY = "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)"

# Provenance as stated in skimage/data/_fetchers.py docstrings,
# sklearn/datasets/images/README.txt and matplotlib's sample_data.
BUILTIN_PHOTOS: tuple[BuiltinPhoto, ...] = (
    BuiltinPhoto("astronaut", "astronaut", "skimage", "data/astronaut.png",
                 "Eileen Collins, NASA Great Images database; via skimage.data.astronaut",
                 "public domain (NASA, no known copyright restrictions)"),
    BuiltinPhoto("chelsea", "chelsea", "skimage", "data/chelsea.png",
                 "Chelsea the cat by Stefan van der Walt; via skimage.data.chelsea",
                 "CC0 (Stefan van der Walt)"),
    BuiltinPhoto("coffee", "coffee", "skimage", "data/coffee.png",
                 "coffee cup, courtesy of Pikolo Espresso Bar; via skimage.data.coffee",
                 "CC0 (Rachel Michetti)"),
    BuiltinPhoto("hubble_deep_field", "hubble_deep_field", "skimage", "data/hubble_deep_field.jpg",
                 "Hubble eXtreme Deep Field, HubbleSite; via skimage.data.hubble_deep_field",
                 "public domain (NASA)"),
    BuiltinPhoto("ihc", "ihc", "skimage", "data/ihc.png",
                 "IHC staining, Center for Microscopy And Molecular Imaging (CMMI); "
                 "via skimage.data.immunohistochemistry",
                 "no known copyright restrictions"),
    BuiltinPhoto("motorcycle_left", "motorcycle", "skimage", "data/motorcycle_left.png",
                 "left view: " + _MIDDLEBURY, _MIDDLEBURY_LICENCE),
    BuiltinPhoto("motorcycle_right", "motorcycle", "skimage", "data/motorcycle_right.png",
                 "right view: " + _MIDDLEBURY, _MIDDLEBURY_LICENCE),
    BuiltinPhoto("retina", "retina", "skimage", "data/retina.jpg",
                 "fundus photograph by Mikael Häggström, Wikimedia Commons; via skimage.data.retina",
                 "CC0 1.0"),
    BuiltinPhoto("rocket", "rocket", "skimage", "data/rocket.jpg",
                 "DSCOVR launch on Falcon 9, SpaceX Photos; via skimage.data.rocket",
                 "public domain (SpaceX)"),
    BuiltinPhoto("china", "china", "sklearn", "datasets/images/china.jpg",
                 "Flickr, danielbuechele; via sklearn.datasets.load_sample_image",
                 _FLICKR_CC_BY + ", attribution: danielbuechele"),
    BuiltinPhoto("flower", "flower", "sklearn", "datasets/images/flower.jpg",
                 "Flickr, vultilion; via sklearn.datasets.load_sample_image",
                 _FLICKR_CC_BY + ", attribution: vultilion"),
    BuiltinPhoto("grace_hopper", "grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                 "Grace Hopper, U.S. Navy photograph; via matplotlib sample_data",
                 "public domain (U.S. Navy)"),
)


@dataclass(frozen=True)
class RawImage:
    """One input file to decode into ``raw_dir``, with its provenance."""

    name: str
    group: str
    path: Path
    origin: str
    licence: str
    label: str = ""  # how messages name the file if not by its path, which may not last (archive entries)


def read_sources(raw_dir: Path) -> pd.DataFrame:
    """Read ``raw_dir/sources.csv`` as written by :func:`gansr.data.fetch.fetch_raw`."""
    path = Path(raw_dir) / SOURCES_FILE
    text_columns = set(SOURCES_COLUMNS) - _INT_COLUMNS
    try:
        # keep_default_na=False: an image named "NA" or a blank note stays a string.
        table = pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=False)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: not found (run the download stage first)") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in SOURCES_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}")
    return table


def builtin_images() -> list[RawImage]:
    """The :data:`BUILTIN_PHOTOS`, located inside their installed packages, sorted by name."""
    return sorted((locate_builtin(photo) for photo in BUILTIN_PHOTOS), key=lambda image: image.name)


def folder_images(folder: Path, licence: str = FOLDER_LICENCE, setting: str = "data.folder") -> list[RawImage]:
    """Every image file under ``folder`` (recursively), named by its relative path, sorted.

    ``setting`` names the params key the folder came from, for messages.
    """
    _require_dir(folder, setting)
    return require_images(scan_images(folder, setting, licence), f"{setting} {folder}")


def check_image_folder(folder: Path, setting: str) -> None:
    """Raise the DataError :func:`folder_images` would for a missing or image-less ``folder``; log nothing."""
    _require_dir(folder, setting)
    require_images(_image_files(folder.resolve())[0], f"{setting} {folder}")


def scan_images(folder: Path, origin: str, licence: str) -> list[RawImage]:
    """Every image file under ``folder`` (recursively), named by its relative path, sorted.

    Each image's origin is ``<origin>: <relative path>``. Other files (not
    hidden ones) are logged as skipped, as ``<origin>: N files skipped, …``.
    """
    root = folder.resolve()
    paths, skipped = _image_files(root)
    if skipped:
        log.warning("%s: %s", origin, skipped_note([path.relative_to(root).as_posix() for path in skipped]))
    by_name: dict[str, RawImage] = {}
    for path in paths:
        relative = path.relative_to(root)
        image = RawImage(safe_name(relative), safe_name(relative), path,
                         f"{origin}: {relative.as_posix()}", licence)
        # casefold: names must stay distinct on case-insensitive file systems too
        clash = by_name.setdefault(image.name.casefold(), image)
        if clash is not image:
            raise DataError(f"{clash.path} and {path} both map to image name {image.name!r}; rename one")
    return sorted(by_name.values(), key=lambda image: image.name)


def skipped_note(skipped: Sequence[str], kind: str = "images") -> str:
    """``N files skipped, not <kind> by extension: a, b, c, …`` for the files a folder scan left out."""
    names = ", ".join(skipped[:3]) + (", …" if len(skipped) > 3 else "")
    return f"{len(skipped)} file{'' if len(skipped) == 1 else 's'} skipped, not {kind} by extension: {names}"


def _require_dir(folder: Path, setting: str) -> None:
    if not folder.is_dir():
        reason = "is not a directory" if folder.exists() else "does not exist"
        raise DataError(f"{setting} {folder} {reason}")


def require_images(images: list[_T], where: str) -> list[_T]:
    """``images`` unchanged, or a DataError naming ``where`` if there are none."""
    if not images:
        raise DataError(f"{where} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def safe_name(relative: PurePath) -> str:
    """A file-system-safe ASCII name for a relative image path: ``sub/My Photo.JPG`` → ``sub__My_Photo``."""
    return "__".join(_safe_part(part) for part in (*relative.parent.parts, relative.stem))


def _safe_part(part: str) -> str:
    # Decompose accents (é → e + ´) and drop the marks, so names stay readable.
    decomposed = unicodedata.normalize("NFKD", part)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^A-Za-z0-9._-]+", "_", plain).strip(".") or "_"


def _image_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``root``, and the other files; hidden ones ignored, links out of ``root`` refused.

    Symlinked directories are not descended into (no loops, no duplicates).
    """
    found, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in dirnames:
            _refuse_escape(here / name, root)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(here / name)
                continue
            _refuse_escape(here / name, root)
            found.append(here / name)
    return found, skipped


def _refuse_escape(path: Path, root: Path) -> None:
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        raise DataError(f"{path}: symlink points outside data.folder (to {path.resolve()})")


def locate_builtin(photo: BuiltinPhoto) -> RawImage:
    """The file of a built-in image inside its installed package."""
    try:
        package_dir = importlib.resources.files(photo.package)
    except ModuleNotFoundError as exc:
        raise DataError(f"builtin photo {photo.name} needs the {photo.package} package installed") from exc
    path = Path(str(package_dir.joinpath(photo.file)))
    if not path.is_file():
        raise DataError(f"{path}: builtin photo {photo.name} is missing from the installed {photo.package}")
    return RawImage(photo.name, photo.group, path, photo.origin, photo.licence)
