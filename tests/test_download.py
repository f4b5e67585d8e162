"""The ``url`` data source against a real HTTP server on 127.0.0.1: verified, resumable, safely unpacked."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from local_servers import free_port
from PIL import Image

from gansr.config import DataConfig, parse_params
from gansr.data.download import download
from gansr.data.fetch import fetch_raw
from gansr.data.sources import read_sources
from gansr.errors import ConfigError, DataError


class _Handler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-`` support, plus the failures a test asks the server for."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        served = self.server
        served.requests.append((self.path, self.headers.get("Range")))
        body = served.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if served.failures.get(self.path):
            served.failures[self.path] -= 1
            self.send_error(503)
            return
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(wanted.group(1)) if wanted and served.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = served.cuts.pop(self.path, None)
        self.wfile.write(body[start:cut])
        self.close_connection = cut is not None  # hang up mid-body: the client sees a short read

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.cuts: dict[str, int] = {}  # path → bytes sent before hanging up, once
        self.failures: dict[str, int] = {}  # path → how many 503s to answer first
        self.ranges = True  # False: ignore Range and always send the whole file
        self.requests: list[tuple[str, str | None]] = []

    def publish(self, name: str, body: bytes) -> tuple[str, str]:
        """Serve ``body`` at ``/name``; return its URL and SHA-256."""
        self.files[f"/{name}"] = body
        return f"http://127.0.0.1:{self.server_port}/{name}", hashlib.sha256(body).hexdigest()


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _png(seed: int, size: int = 16) -> bytes:
    # Noise does not compress, so good archives stay far below any max_ratio.
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _tar(entries: dict[str, bytes], specials: tuple[tarfile.TarInfo, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in specials:
            tf.addfile(info)
    return buffer.getvalue()


def _special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def _url_source(url: str, sha256: str, **limits: object) -> DataConfig:
    return DataConfig(source="url", url=url, sha256=sha256, **limits)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


GOOD = {"photos/a.png": _png(1), "photos/sub/b.png": _png(2), "photos/README.txt": b"not an image\n"}


@pytest.mark.parametrize(("name", "build"), [("photos.zip", _zip), ("photos.tar.gz", _tar)])
def test_archive_becomes_raw_images_with_their_origin(server, tmp_path, name, build):
    url, sha = server.publish(name, build(GOOD))
    table = fetch_raw(_url_source(url, sha), tmp_path / "data" / "raw", tmp_path / "cache")
    raw = tmp_path / "data" / "raw"
    assert _files(raw) == ["images/photos__a.png", "images/photos__sub__b.png", "sources.csv"]
    assert list(table["origin"]) == [f"{url}: photos/a.png", f"{url}: photos/sub/b.png"]
    assert set(table["licence"]) == {"see data.url"}
    assert read_sources(raw).to_dict("records") == table.to_dict("records")
    assert _files(tmp_path / "cache") == [sha]  # verified, renamed, no .part left


def test_second_fetch_uses_the_verified_cache(server, tmp_path):
    url, sha = server.publish("photos.zip", _zip(GOOD))
    cfg = _url_source(url, sha.upper(), licence="DIV2K: academic research only")
    fetch_raw(cfg, tmp_path / "a", tmp_path / "cache")
    table = fetch_raw(cfg, tmp_path / "b", tmp_path / "cache")
    assert len(server.requests) == 1
    assert set(table["licence"]) == {"DIV2K: academic research only"}
    assert (tmp_path / "a" / "sources.csv").read_bytes() == (tmp_path / "b" / "sources.csv").read_bytes()


def test_default_cache_is_in_the_repository(server, tmp_path):
    url, sha = server.publish("photo.png", _png(3))
    table = fetch_raw(_url_source(url, sha), tmp_path / "data" / "raw")
    assert list(table["origin"]) == [f"{url}: photo.png"]  # a single image, no archive
    assert _files(tmp_path / ".cache" / "downloads") == [sha]


# Big enough for several download chunks: a cut transfer keeps the whole chunks it received.
LARGE = {f"photos/{i}.png": _png(i, size=160) for i in range(3)}


def test_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    body = _zip(LARGE)
    url, sha = server.publish("photos.zip", body)
    server.cuts["/photos.zip"] = len(body) * 2 // 3
    path = download(url, sha, tmp_path / "cache", attempts=2, backoff_s=0)
    assert path.read_bytes() == body
    (first, no_range), (second, resumed) = server.requests
    assert no_range is None and 0 < int(resumed.removeprefix("bytes=").rstrip("-")) <= len(body) * 2 // 3


def test_partial_download_is_resumed_by_the_next_run(server, tmp_path):
    body = _zip(LARGE)
    url, sha = server.publish("photos.zip", body)
    server.cuts["/photos.zip"] = len(body) // 2
    with pytest.raises(DataError, match="download failed after 1 attempts"):
        download(url, sha, tmp_path / "cache", attempts=1)
    kept = (tmp_path / "cache" / f"{sha}.part").stat().st_size
    assert 0 < kept <= len(body) // 2
    table = fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")
    assert len(table) == 3 and server.requests[-1] == ("/photos.zip", f"bytes={kept}-")


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    body = _zip(GOOD)
    url, sha = server.publish("photos.zip", body)
    server.ranges = False
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"{sha}.part").write_bytes(b"stale bytes from another file")
    assert download(url, sha, tmp_path / "cache").read_bytes() == body


def test_server_errors_are_retried(server, tmp_path):
    url, sha = server.publish("photos.zip", _zip(GOOD))
    server.failures["/photos.zip"] = 2
    assert download(url, sha, tmp_path / "cache", backoff_s=0).is_file()
    assert len(server.requests) == 3


def test_wrong_checksum_caches_nothing(server, tmp_path):
    url, actual = server.publish("photos.zip", _zip(GOOD))
    expected = "0" * 64
    with pytest.raises(DataError, match=f"{re.escape(url)}: sha256 mismatch, expected {expected}, got {actual}"):
        fetch_raw(_url_source(url, expected), tmp_path / "raw", tmp_path / "cache")
    assert _files(tmp_path / "cache") == []
    assert not (tmp_path / "raw").exists()


def _corrupt_zip() -> bytes:
    body = bytearray(_zip({"a.png": bytes(5000)}))  # zeros deflate to a short stream, easy to damage
    start = body.index(b"a.png") + len("a.png")  # the member's data follows its local header
    body[start + 2 : start + 12] = b"\xff" * 10
    return bytes(body)


@pytest.mark.parametrize(("name", "body", "message"), [
    ("truncated.tar.gz", _tar(GOOD)[:-200], "cannot unpack"),
    ("damaged.zip", _corrupt_zip(), "cannot unpack"),
    ("truncated.zip", _zip(GOOD)[:-30], "not a readable zip or tar archive"),
])
def test_corrupt_archive_with_matching_checksum_is_refused(server, tmp_path, name, body, message):
    url, sha = server.publish(name, body)
    with pytest.raises(DataError, match=f"{re.escape(url)}: {message}"):
        fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("build", [_zip, _tar])
@pytest.mark.parametrize(("entry", "why"), [
    ("../evil.png", "'..' leads outside"),
    ("photos/../../evil.png", "'..' leads outside"),
    ("/tmp/evil.png", "absolute path"),
])
def test_entries_escaping_the_destination_are_refused(server, tmp_path, build, entry, why):
    raw = tmp_path / "data" / "raw"
    good_url, good_sha = server.publish("good.zip", _zip(GOOD))
    fetch_raw(_url_source(good_url, good_sha), raw, tmp_path / "cache")
    before = {name: (raw / name).read_bytes() for name in _files(raw)}
    url, sha = server.publish("evil", build({**GOOD, entry: _png(9)}))
    with pytest.raises(DataError, match=f"{re.escape(url)}: archive entry '{re.escape(entry)}': {why}"):
        fetch_raw(_url_source(url, sha), raw, tmp_path / "cache")
    assert {name: (raw / name).read_bytes() for name in _files(raw)} == before
    assert sorted(p.name for p in raw.parent.iterdir()) == ["raw"]  # no temporaries left
    assert not list(tmp_path.rglob("evil.png"))


@pytest.mark.parametrize(("special", "kind"), [
    (_special("photos/link.png", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    (_special("photos/hard.png", tarfile.LNKTYPE, "photos/a.png"), "hard link"),
    (_special("photos/pipe", tarfile.FIFOTYPE), "FIFO"),
    (_special("photos/dev", tarfile.CHRTYPE), "character device"),
])
def test_links_and_devices_in_a_tar_are_refused(server, tmp_path, special, kind):
    url, sha = server.publish("photos.tar.gz", _tar(GOOD, (special,)))
    with pytest.raises(DataError, match=f"archive entry '{special.name}': a {kind}; refused"):
        fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw").exists()


def test_symlink_in_a_zip_is_refused(server, tmp_path):
    link = zipfile.ZipInfo("photos/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("photos/a.png", _png(1))
        zf.writestr(link, "/etc/passwd")
    url, sha = server.publish("photos.zip", buffer.getvalue())
    with pytest.raises(DataError, match="archive entry 'photos/link.png': a symbolic link; refused"):
        fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")


@pytest.mark.parametrize("build", [_zip, _tar])
def test_too_many_entries_are_refused(server, tmp_path, build):
    url, sha = server.publish("many", build({f"p{i}.png": _png(i) for i in range(5)}))
    with pytest.raises(DataError, match=r"archive entry 'p3.png': more than data.max_files \(3\) entries"):
        fetch_raw(_url_source(url, sha, max_files=3), tmp_path / "raw", tmp_path / "cache")


@pytest.mark.parametrize("build", [_zip, _tar])
def test_zip_bomb_is_refused_by_its_compression_ratio(server, tmp_path, build):
    url, sha = server.publish("bomb", build({"a.png": _png(1), "bomb.png": bytes(4 << 20)}))
    with pytest.raises(DataError, match=r"'bomb.png': declared size passes data.max_ratio \(200\)"):
        fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw").exists()


def test_unpacked_size_limit(server, tmp_path):
    noise = np.random.default_rng(0).bytes(3 << 19)  # 1.5 MiB that no compressor shrinks
    url, sha = server.publish("big.zip", _zip({"big.png": noise}, zipfile.ZIP_STORED))
    with pytest.raises(DataError, match=r"'big.png': declared size passes data.max_unpacked_mb \(1 MiB\)"):
        fetch_raw(_url_source(url, sha, max_unpacked_mb=1), tmp_path / "raw", tmp_path / "cache")


def test_lying_size_header_gains_nothing(server, tmp_path):
    body = bytearray(_zip({"bomb.png": bytes(4 << 20)}))
    directory = body.rindex(b"PK\x01\x02")  # central directory entry: uncompressed size at offset 24
    body[directory + 24 : directory + 28] = (100).to_bytes(4, "little")
    url, sha = server.publish("liar.zip", bytes(body))
    with pytest.raises(DataError, match=re.escape(url)):
        fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw").exists()


def test_archive_without_images_is_refused(server, tmp_path):
    url, sha = server.publish("docs.zip", _zip({"README.txt": b"hello\n"}))
    with pytest.raises(DataError, match=f"{re.escape(url)} has no images"):
        fetch_raw(_url_source(url, sha), tmp_path / "raw", tmp_path / "cache")


def test_missing_file_fails_at_once_naming_url_and_status(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_port}/nothing.zip"
    with pytest.raises(DataError, match=f"{re.escape(url)}: HTTP 404"):
        fetch_raw(_url_source(url, "a" * 64), tmp_path / "raw", tmp_path / "cache")
    assert len(server.requests) == 1  # a 404 is not retried


def test_server_down_fails_after_bounded_retries(tmp_path):
    port = free_port()
    started = time.monotonic()
    with pytest.raises(DataError, match=f"127.0.0.1:{port}/x.zip: download failed after 3 attempts"):
        download(f"http://127.0.0.1:{port}/x.zip", "a" * 64, tmp_path / "cache", attempts=3, backoff_s=0.01)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("data", "message"), [
    ({"source": "url", "url": "https://example.org/x.zip"}, "data.sha256 must be the 64 hex digits"),
    ({"source": "url", "url": "https://example.org/x.zip", "sha256": "abc"}, "data.sha256 must be"),
    ({"source": "url", "url": "ftp://example.org/x.zip", "sha256": "a" * 64}, "data.url must be an http"),
    ({"max_ratio": 0}, "data.max_ratio must be > 0"),
])
def test_url_source_settings_are_checked(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_params({"data": data})
