"""Training-format export files, replaced per domain partition atomically (a whole directory at a time)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envfactory_dagster.settings import DEFAULT_HOME


def export_directory(home: str, kind: str, domain: str) -> Path:
    """`<home>/exports/<kind>/domain=<domain>` (kept locally when home is an object-store URL)."""
    base = Path(DEFAULT_HOME).expanduser() if "://" in home else Path(home)
    return base / "exports" / kind / f"domain={domain}"


def replace_directory(target: Path, write: Callable[[Path], Any]) -> Path:
    """Fill a fresh sibling directory with `write`, then swap it in for `target`.

    A failed or killed `write` leaves the old files untouched; the swap itself is two renames, so a
    reader may for an instant find no directory, but never a half-written one.
    """
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
