"""The ``url`` data source's two halves: a verified, resumable download and a safe unpack.

:func:`download` streams ``data.url`` into ``<cache>/<sha256>.part``, continues
an interrupted download with an HTTP Range request, retries connection errors
and 5xx answers with exponential backoff, and renames the file to
``<cache>/<sha256>`` only once its SHA-256 matches ``data.sha256``: a cached
file is always a verified one, and a wrong one is deleted.

:func:`unpack` extracts a zip or tar (plain, gzip, bzip2 or xz) archive and
refuses whatever could write outside its destination or fill the disk:
absolute paths, ``..``, symbolic and hard links, devices, FIFOs, more than
``data.max_files`` entries, more than ``data.max_unpacked_mb`` of content, or
more than ``data.max_ratio`` times the archive's own size (a zip bomb). Sizes
are checked from the headers first and counted again while writing, so an
archive whose headers lie gains nothing.
"""

from __future__ import annotations

import logging
import lzma
import os
import re
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote, urlsplit

import requests
from tqdm import tqdm

from gansr.config import DataConfig
from gansr.errors import DataError
from gansr.imageio import sha256_file

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16  # an interrupted transfer loses at most the chunk it was reading
MIB = 1 << 20
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# What a damaged archive (or a full disk) raises while unpacking; gzip and bz2 errors are OSErrors.
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError,
            NotImplementedError)
_SPECIAL_FILE_TYPES = {stat.S_IFLNK: "symbolic link", stat.S_IFCHR: "character device",
                       stat.S_IFBLK: "block device", stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket"}
_SPECIAL_TAR_TYPES = {tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link",
                      tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                      tarfile.FIFOTYPE: "FIFO"}


class _Transient(Exception):
    """A failure the server may not repeat: worth another attempt."""


_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, _Transient)


def download(url: str, sha256: str, cache_dir: Path, *, attempts: int = 4, backoff_s: float = 1.0,
             timeout_s: float = 30.0) -> Path:
    """Return ``cache_dir/<sha256>``, downloading ``url`` into it first unless it is already there.

    Up to ``attempts`` tries, waiting ``backoff_s``, 2×, 4×… between them; each
    try resumes the bytes a previous one (or a previous run) left in the
    ``.part`` file. Raises :class:`DataError` naming the URL on an HTTP 4xx,
    when every attempt failed, or when the bytes do not hash to ``sha256``.
    """
    expected = sha256.lower()
    cached = Path(cache_dir) / expected
    if cached.is_file():
        return cached  # only ever renamed into place after its hash matched
    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_name(f"{expected}.part")
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, part, timeout_s)
            break
        except _RETRYABLE as exc:
            if attempt == attempts:
                raise DataError(f"{url}: download failed after {attempts} attempts ({_first_line(exc)})") from exc
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("download %s: %s; attempt %d of %d in %.1f s", url, _first_line(exc), attempt + 1,
                        attempts, delay)
            time.sleep(delay)
    actual = sha256_file(part)
    if actual != expected:
        part.unlink()
        raise DataError(f"{url}: sha256 mismatch, expected {expected}, got {actual}; the download was deleted")
    os.replace(part, cached)
    return cached


def unpack(archive: Path, dest: Path, cfg: DataConfig) -> None:
    """Extract ``archive``, downloaded from ``cfg.url``, into the existing folder ``dest``.

    A file that is neither a zip nor a tar archive is taken to be a single
    image and copied under the name the URL gives it. Raises
    :class:`DataError` naming the URL and the offending entry when the archive
    breaks a rule or is corrupt; ``dest`` may then hold a partial extraction.
    """
    name = _url_file_name(cfg.url)
    budget = _Budget(cfg, archive.stat().st_size)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, dest, budget)
        elif tarfile.is_tarfile(archive):
            _untar(archive, dest, budget)
        elif name.lower().endswith(ARCHIVE_SUFFIXES):
            raise DataError(f"{cfg.url}: not a readable zip or tar archive")
        else:
            shutil.copyfile(archive, _target(dest, name, cfg.url))
    except _CORRUPT as exc:
        raise DataError(f"{cfg.url}: cannot unpack ({_first_line(exc)})") from exc


def _fetch(url: str, part: Path, timeout_s: float) -> None:
    """One HTTP GET of ``url`` into ``part``, continuing after the bytes already there if the server can."""
    have = part.stat().st_size if part.exists() else 0
    # identity: the hash is over the file's own bytes, and Range counts those, not a re-encoding.
    headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={have}-"} if have else {})
    with requests.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
        status = response.status_code
        if status == 416:
            return  # nothing after byte `have`: the .part is whole already, the hash decides
        if status >= 500:
            raise _Transient(f"HTTP {status} {response.reason}")
        if status not in (200, 206):
            raise DataError(f"{url}: HTTP {status} {response.reason}")
        if status == 206 and _range_start(response) != have:
            part.unlink()
            raise _Transient(f"server resumed at the wrong offset (asked for byte {have})")
        start = have if status == 206 else 0  # 200: the server ignored Range, start over
        length = response.headers.get("Content-Length", "")
        total = start + int(length) if length.isdigit() else None
        with (open(part, "ab" if start else "wb") as out,
              tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=f"download {_url_file_name(url)}", leave=False) as bar):
            for chunk in response.iter_content(CHUNK_BYTES):
                out.write(chunk)
                bar.update(len(chunk))


def _range_start(response: requests.Response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


class _Budget:
    """Counts what an archive unpacks to and refuses it past the ``data.max_*`` limits."""

    def __init__(self, cfg: DataConfig, packed_bytes: int) -> None:
        self.cfg = cfg
        self.packed_bytes = packed_bytes
        self.entries = 0
        self.declared_bytes = 0
        self.written_bytes = 0

    def admit(self, entry: str, declared_size: int) -> None:
        """Count one entry and the size its header declares."""
        self.entries += 1
        if self.entries > self.cfg.max_files:
            raise self.refuse(entry, f"more than data.max_files ({self.cfg.max_files}) entries")
        self.declared_bytes += declared_size
        self._check(entry, self.declared_bytes, "declared size")

    def wrote(self, entry: str, size: int) -> None:
        """Count bytes about to be written, whatever the headers said.

        zipfile and tarfile stop reading at the declared size today; counting
        here keeps the limits true without relying on that.
        """
        self.written_bytes += size
        self._check(entry, self.written_bytes, "unpacked size")

    def refuse(self, entry: str, why: str) -> DataError:
        return DataError(f"{self.cfg.url}: archive entry {entry!r}: {why}; refused")

    def _check(self, entry: str, size: int, what: str) -> None:
        if size > self.cfg.max_unpacked_mb * MIB:
            raise self.refuse(entry, f"{what} passes data.max_unpacked_mb ({self.cfg.max_unpacked_mb} MiB)")
        if size > self.cfg.max_ratio * self.packed_bytes:
            raise self.refuse(entry, f"{what} passes data.max_ratio ({self.cfg.max_ratio:g}) × the archive's "
                                     f"{self.packed_bytes} bytes, a possible zip bomb")


def _unzip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        # The central directory lists every entry: check them all before writing a byte.
        plan = [(info, _checked_zip_target(info, dest, budget)) for info in zf.infolist()]
        for info, target in plan:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as source:
                    _write(source, target, info.filename, budget)


def _checked_zip_target(info: zipfile.ZipInfo, dest: Path, budget: _Budget) -> Path:
    budget.admit(info.filename, info.file_size)
    if info.flag_bits & 0x1:
        raise budget.refuse(info.filename, "encrypted")
    special = _SPECIAL_FILE_TYPES.get(stat.S_IFMT(info.external_attr >> 16))  # Unix mode, if recorded
    if special:
        raise budget.refuse(info.filename, f"a {special}")
    return _target(dest, info.filename, budget.cfg.url)


def _untar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive) as tf:
        for member in tf:  # lazily, so max_files stops a huge listing early
            budget.admit(member.name, member.size)
            if not (member.isfile() or member.isdir()):
                kind = _SPECIAL_TAR_TYPES.get(member.type, f"tar entry of type {member.type!r}")
                raise budget.refuse(member.name, f"a {kind}")
            target = _target(dest, member.name, budget.cfg.url)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with tf.extractfile(member) as source:
                    _write(source, target, member.name, budget)


def _target(dest: Path, entry: str, url: str) -> Path:
    """Where ``entry`` goes under ``dest``; absolute paths and ``..`` are refused."""
    path = entry.replace("\\", "/")  # zips made on Windows may separate with backslashes
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise DataError(f"{url}: archive entry {entry!r}: absolute path; refused")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{url}: archive entry {entry!r}: '..' leads outside the archive; refused")
    return dest.joinpath(*parts)


def _write(source: IO[bytes], target: Path, entry: str, budget: _Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = open(target, "xb")  # "x": an entry listed twice is refused, not silently replaced
    except FileExistsError as exc:
        raise budget.refuse(entry, "listed twice") from exc
    with out:
        while chunk := source.read(CHUNK_BYTES):
            budget.wrote(entry, len(chunk))
            out.write(chunk)


def _url_file_name(url: str) -> str:
    """The last path segment of ``url`` (``…/DIV2K_train_HR.zip`` → ``DIV2K_train_HR.zip``)."""
    return PurePosixPath(unquote(urlsplit(url).path)).name or "download"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
