"""Where a store lives: a local folder (a `Path`) or a URL (`s3://bucket/prefix`, `memory://x` in tests)
as a `Location`, an fsspec filesystem and a path on it.

Credentials and endpoints come from the usual sources only (AWS_* variables, ~/.aws, AWS_ENDPOINT_URL,
fsspec's FSSPEC_S3_ENDPOINT_URL-style settings), never from the URL: a URL with `user:password@`, a
query or a fragment is refused without being echoed. Every I/O error of a `Location`, transport
errors of the client library included, is an `OSError` with any secret of the environment masked, so
the store's usual error handling turns it into one `StoreError` line.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefmill.atomic import write_atomically
from prefmill.errors import StoreError, cut, os_reason

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_OPTIONS = {"s3": {"use_listings_cache": False}, "s3a": {"use_listings_cache": False}}
"""Listing caches off: a writer numbering versions and a reader polling must see every new object."""
CREATE_ONLY = ("s3", "s3a", "memory")
"""Backends whose create-only write is atomic: S3's conditional put (If-None-Match), memory under a lock.
Others (gcsfs, adlfs...) are refused for writing rather than risk two writers on one version."""
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_MEMORY_LOCK = threading.Lock()
_PROBED: set[str] = set()


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def scrub(text: str) -> str:
    """`text` with the values of the secret variables in the environment masked."""
    for name in SECRET_ENV:
        if len(value := os.environ.get(name, "")) >= 4:
            text = text.replace(value, "***")
    return text


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """The client libraries' own errors that are not OSErrors: botocore's (no credentials, no connection)."""
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return ()
    return (BotoCoreError,)


def _io(method):
    """Run a filesystem call; a transport failure becomes an OSError, secrets masked in either."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            if exc.strerror and scrub(exc.strerror) == exc.strerror:
                raise
            text, code = str(exc.strerror or exc), exc.errno or errno.EIO
            if not exc.strerror and isinstance(exc, FileNotFoundError):  # s3fs's: FileNotFoundError(path)
                text, code = f"not found: {text}", errno.ENOENT
            raise type(exc)(code, scrub(text)) from None
        except _transport_errors() as exc:
            raise OSError(errno.EIO, scrub(cut(exc))) from None
    return wrapped


@dataclass(frozen=True)
class Location:
    """A file or folder on an fsspec filesystem; `/` joins like `Path`, `str()` is its URL (or local path)."""

    fs: Any = field(compare=False, repr=False)
    path: str  # as the filesystem names it: `bucket/prefix/...`, `/abs/path`
    url: str  # as the user sees it; what `open_store` takes back

    @property
    def local(self) -> bool:
        return "file" in _protocols(self.fs)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def __truediv__(self, part: str) -> Location:
        url = str(Path(self.url) / part) if self.local else f"{self.url}/{part}"
        return Location(self.fs, f"{self.path.rstrip('/')}/{part}", url)

    def __str__(self) -> str:
        return self.url

    def snapshot(self) -> Location:
        """The same place through a filesystem of its own that caches listings: for a reader that wants
        one view of the store (a query, which DuckDB would otherwise ask about each file many times)."""
        if self.local:
            return self
        fs = type(self.fs)(**{**self.fs.storage_options, "use_listings_cache": True, "skip_instance_cache": True})
        return Location(fs, self.path, self.url)

    def sibling(self, name: str) -> Location:
        return Location(self.fs, f"{self.path.rsplit('/', 1)[0]}/{name}", f"{self.url.rsplit('/', 1)[0]}/{name}")

    @_io
    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    @_io
    def open(self, *, size: int | None = None):
        """For reading; a `size` known from a listing spares an object store the request that asks it."""
        return self.fs.open(self.path, "rb", **({"size": size} if size is not None and not self.local else {}))

    @_io
    def files(self) -> dict[str, dict]:
        """Every file below -> its details (`size`...), by path relative to this folder; one listing on
        an object store."""
        found = self.fs.find(self.path, detail=True)
        start = len(self.path.rstrip("/")) + 1
        return {name[start:]: info for name, info in found.items() if name.startswith(self.path.rstrip("/") + "/")}

    @_io
    def folders(self) -> list[str]:
        """Names of the folders directly inside; none when this folder does not exist."""
        try:
            entries = self.fs.ls(self.path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory")

    @_io
    def glob(self, pattern: str) -> list[Location]:
        start = len(self.path.rstrip("/")) + 1
        return [self / name[start:] for name in sorted(self.fs.glob(f"{self.path.rstrip('/')}/{pattern}"))]

    @_io
    def mkdir(self) -> None:
        """A folder, locally; object stores have no folders to make."""
        if self.local:
            self.fs.makedirs(self.path, exist_ok=True)

    @_io
    def write_whole(self, data: bytes) -> None:
        """Appear whole or not at all: a local file by rename, an object by one put."""
        if self.local:
            write_atomically(Path(self.path), lambda tmp: Path(tmp).write_bytes(data))
        else:
            self.fs.pipe_file(self.path, data)

    @_io
    def create(self, data: bytes) -> bool:
        """Write only if nothing is there yet (one writer of many wins); False when something was."""
        protocol = _protocols(self.fs)
        if "memory" in protocol:
            with _MEMORY_LOCK:
                if self.fs.exists(self.path):
                    return False
                self.fs.pipe_file(self.path, data)
                return True
        if not protocol & {"s3", "s3a"}:
            raise StoreError(f"{self}: this store cannot write create-only, so two writers could mix their files",
                             hint=f"publish to a local folder or to s3:// (supported for writing: {', '.join(CREATE_ONLY)})")
        try:
            self.fs.pipe_file(self.path, data, mode="create")
        except FileExistsError:
            return False
        return True

    @_io
    def upload(self, source: Path) -> None:
        self.fs.put_file(str(source), self.path)

    @_io
    def copy_to(self, target: Location) -> None:
        self.fs.cp_file(self.path, target.path)

    @_io
    def move_to(self, target: Location) -> None:
        if self.local:
            os.replace(self.path, target.path)
        else:
            self.fs.mv(self.path, target.path)

    @_io
    def remove(self) -> None:
        try:
            self.fs.rm(self.path, recursive=True)
        except FileNotFoundError:
            pass


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def open_store(store: str | Path | None = None) -> Path | Location:
    """`--store` as given (None: $PREFMILL_STORE, else ./store): a `Path`, or a `Location` for a URL.
    `file://` URLs are local paths."""
    if isinstance(store, Path):
        return store
    text = store if store is not None else os.environ.get("PREFMILL_STORE", "store")
    if not (m := _URL.match(text)):
        return Path(text)
    scheme = m.group(1).lower()
    parts = urllib.parse.urlsplit(text)
    if any(c in text for c in "@?#") or ":" in parts.netloc:
        raise StoreError(f"store URL {scheme}://...: a URL may not carry credentials or options "
                         "(user:password@, a port, ?query or #fragment); it is not repeated here",
                         hint="give credentials the usual way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                              "~/.aws), the endpoint in AWS_ENDPOINT_URL or FSSPEC_S3_ENDPOINT_URL")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"{cut(text)}: only local file:// URLs are supported", hint="use file:///absolute/path")
        return Path(urllib.parse.unquote(parts.path))
    if not parts.netloc and scheme != "memory":
        raise StoreError(f"{cut(text)}: the URL names no bucket", hint=f"use {scheme}://bucket/prefix")
    return location(text)


def location(url: str) -> Location:
    """The `Location` of a URL this module made (or checked): the store's and its files'."""
    import fsspec

    scheme = url.split("://", 1)[0].lower()
    try:
        fs = fsspec.filesystem(scheme, **_OPTIONS.get(scheme, {}))
    except (ImportError, ValueError) as exc:
        raise StoreError(f"{scheme}:// stores: {cut(exc)}",
                         hint="stores on object storage need the backend's fsspec package (s3fs for s3://)") from None
    path = fs._strip_protocol(url).rstrip("/")
    return Location(fs, path, fs.unstrip_protocol(path))


def open_input(path: str) -> Any:
    """What pyarrow and polars read: a local path as it is, an object opened through its filesystem."""
    return location(path).open() if is_url(path) else path


def as_location(root: Path | Location) -> Location:
    """A local folder seen through fsspec too, for code that serves both kinds of store."""
    if isinstance(root, Location):
        return root
    from fsspec.implementations.local import LocalFileSystem

    fs = LocalFileSystem()
    return Location(fs, fs._strip_protocol(str(root)), str(root))


def work_folder(root: Path | Location) -> Path:
    """Local disk for a run's stage outputs and Prefect results (what the Parquet refs and Prefect's
    result storage need): `<store>/.cache`, or for a URL store a folder named after the URL under
    $PREFMILL_WORK (default ~/.cache/prefmill/work)."""
    if isinstance(root, Path):
        return root / ".cache"
    from prefmill.models import cache_dir

    base = Path(os.environ["PREFMILL_WORK"]).expanduser() if os.environ.get("PREFMILL_WORK") else cache_dir() / "work"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", root.url)[:80].strip("_.")
    return base / f"{safe}-{hashlib.sha256(root.url.encode()).hexdigest()[:10]}"


def check_create_only(root: Location) -> None:
    """Before the first write to a store in this process: the store is writable and a second
    create-only write of one object fails. An S3-compatible server that ignores If-None-Match would
    let two writers claim one version number, so it is refused here."""
    if root.url in _PROBED:
        return
    hint = "check the bucket, the endpoint (AWS_ENDPOINT_URL) and the credentials, or publish to a local folder"
    probe = root / f".prefmill-probe-{uuid.uuid4().hex}"
    try:
        first, second = probe.create(b"probe"), probe.create(b"again")
        probe.remove()
    except OSError as exc:
        raise StoreError(f"{root}: cannot write to the store: {os_reason(exc)}", hint=hint) from None
    if not (first and not second):
        raise StoreError(f"{root}: the server ignores create-only writes (If-None-Match), so two writers "
                         "could claim one version", hint="use a server with conditional writes (AWS S3, MinIO), or a local folder")
    _PROBED.add(root.url)
