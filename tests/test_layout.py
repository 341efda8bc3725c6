"""The generic top-level packages `assets` and `resources` resolve to this repository."""

from __future__ import annotations

from pathlib import Path

import assets
import envfactory_dagster
import resources

REPO = Path(__file__).resolve().parents[1]


def test_packages_resolve_to_this_repository() -> None:
    for package in (assets, resources, envfactory_dagster):
        assert Path(package.__file__).resolve().parent.parent == REPO, package.__name__


def test_core_modules_do_not_import_dagster() -> None:
    offenders = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "envfactory_dagster").rglob("*.py")
        # the entry points: code locations (local, cluster, Kubernetes), the cluster's Celery app
        # and instance storage (named by deploy/), and the CLI
        if path.name
        not in {
            "definitions.py",
            "cluster_definitions.py",
            "k8s_definitions.py",
            "cluster_worker.py",
            "cluster_storage.py",
            "cli.py",
            "cli_progress.py",
        }
        and any(
            line.strip().startswith(("import dagster", "from dagster"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
