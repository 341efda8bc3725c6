"""Fingerprints of the resource catalog's domain folders, to notice new or changed files."""

from __future__ import annotations

import hashlib
from pathlib import Path


def domain_fingerprints(resources_dir: Path) -> dict[str, str]:
    """Domain -> hash of (relative path, size, mtime) of every file in its folder.

    Cheap (no file is read) and changes whenever a file is added, removed, replaced or edited.
    """
    fingerprints: dict[str, str] = {}
    for folder in sorted(p for p in resources_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            stat = path.stat()
            digest.update(
                f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
        fingerprints[folder.name] = digest.hexdigest()[:16]
    return fingerprints
