"""Parsing real API documents: `parse_resource_file` per file, beside a bare load of the same bytes.

    python benchmarks/ingest_parse.py [DIR ...]   (default: ../shared/realworld and ../shared/realworld2)

For every file the product's parser (`ingest.resource_file.parse_resource_file`: format detection,
`$ref` inlining, normalization) is timed against the bare JSON/YAML load (libyaml's CSafeLoader
when present) of the same file
measured in the same run (machines differ ~3x; the ratio is the figure that travels). Prints the total, the
slowest files and the ratio.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from envfactory_dagster.ingest.authentic_resources import list_domains, resource_files
from envfactory_dagster.ingest.resource_file import parse_resource_file

SHARED = Path(__file__).resolve().parents[2] / "shared"


def bare_load(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        json.loads(text)
    else:
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # the fastest safe loader


def timed(function: Callable[[Path], object], path: Path) -> float:
    started = time.perf_counter()
    function(path)
    return time.perf_counter() - started


def main() -> int:
    roots = [Path(a) for a in sys.argv[1:]] or [SHARED / "realworld", SHARED / "realworld2"]
    files = [
        f for root in roots if root.is_dir() for d in list_domains(root) for f in resource_files(root, d)
    ]
    if not files:
        print("no resource files found")
        return 1
    rows = [(path, timed(parse_resource_file, path), timed(bare_load, path)) for path in files]
    parse, bare = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{len(files)} files: parse_resource_file {parse:.2f} s, bare JSON/YAML load {bare:.2f} s "
          f"({parse / bare:.1f}x)")  # fmt: skip
    for path, seconds, load in sorted(rows, key=lambda r: -r[1])[:5]:
        print(f"  {seconds:6.3f} s (bare {load:.3f} s)  {path.relative_to(path.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
