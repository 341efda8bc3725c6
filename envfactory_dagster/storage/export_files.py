"""Training-format export files, replaced per domain partition (a whole directory at a time).

Local homes: the files are written into a fresh sibling directory that is swapped in by rename,
so a reader never finds a half-written directory. Object-store homes (`s3://…`): the files are
written locally, then each is uploaded in one PUT (every object is replaced whole) and objects the
new export no longer has are deleted last. The directory as a whole is not atomic there: while it
is being replaced a reader may see some new and some old files, never a torn one. The partition's
Parquet row set (e.g. `sft_dataset`) is written after its export files, so once a run reports the
partition materialized its export is complete.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envfactory_dagster.storage.object_store import is_url, upload_tree


def export_directory(home: str, kind: str, domain: str) -> Path | str:
    """`<home>/exports/<kind>/domain=<domain>`: a Path for a local home, a URL for object storage."""
    if is_url(home):
        return f"{home.rstrip('/')}/exports/{kind}/domain={domain}"
    return Path(home) / "exports" / kind / f"domain={domain}"


def replace_directory(target: Path | str, write: Callable[[Path], Any]) -> Path | str:
    """Fill a fresh directory with `write(directory)`, then put it in place of `target`.

    A failed or killed `write` leaves the old files untouched. Locally the swap is two renames, so
    a reader may for an instant find no directory, but never a half-written one; for an
    object-store URL see the module docstring.
    """
    if isinstance(target, str) and is_url(target):
        with tempfile.TemporaryDirectory(prefix="envfactory-export-") as staging:
            write(Path(staging))
            upload_tree(Path(staging), target)
        return target
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(staging)
        retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        if target.exists():
            target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
