"""Data homes on object storage (`s3://bucket/prefix`, any fsspec URL): the filesystem and its writes.

Object stores have no rename: a PUT replaces an object whole, so a reader sees the old or the new
object and never a torn one, and a writer that dies before the PUT completes leaves the old one.
Writes here therefore build the complete bytes first and send them in one call (`pipe_file`:
one PUT, or a multipart upload that becomes visible only when it completes). Streaming through
an fsspec file object would not do: its `__exit__` closes, so an exception raised mid-write
would still upload the partial bytes.

Credentials and endpoints come from the usual environment (for S3: `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for an S3-compatible server), never from config.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def is_url(home: str) -> bool:
    """Whether a data home is an fsspec URL (object storage) rather than a local directory."""
    return "://" in home


# Other processes (workers on other machines) write the same prefixes: a cached listing would hide
# their partitions, so every lookup asks the store.
STORAGE_OPTIONS = {"use_listings_cache": False}


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path without protocol) for an object-store URL."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **STORAGE_OPTIONS)
    except ImportError as error:  # e.g. s3fs missing for s3://
        raise ImportError(
            f"data home {url!r} needs an fsspec filesystem package ({error}); for s3:// install "
            "envfactory-dagster[s3]"
        ) from error


def put_bytes(url: str, data: bytes) -> None:
    """Replace the object at `url` with `data` in one upload (atomic for readers)."""
    fs, path = filesystem(url)
    try:
        fs.pipe_file(path, data)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"cannot write {url}: {error} (does the bucket exist?)") from error


def upload_tree(local_dir: Path, url: str) -> list[str]:
    """Upload every file under `local_dir` to `url/<relative path>`, then delete objects under `url`
    that the new tree does not have. Returns the uploaded URLs.

    Each object is replaced whole; the tree as a whole is not atomic (see the module docstring and
    storage/export_files.py): new files land first, stale ones are removed last.
    """
    fs, root = filesystem(url)
    root = root.rstrip("/")
    protocol = url.split("://", 1)[0]
    written: set[str] = set()
    for file in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        key = f"{root}/{file.relative_to(local_dir).as_posix()}"
        fs.pipe_file(key, file.read_bytes())
        written.add(key)
    fs.invalidate_cache(root)
    stale = [key for key in _existing(fs, root) if key not in written]
    if stale:
        fs.rm(stale)
    return [f"{protocol}://{key}" for key in sorted(written)]


def _existing(fs: Any, root: str) -> Iterable[str]:
    return fs.find(root) if fs.exists(root) else []
