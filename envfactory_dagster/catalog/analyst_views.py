"""Views for the analyst's common questions, kept in the DuckDB catalog beside the asset views.

`SELECT * FROM README` lists them with an example query each; `catalog_columns` documents every
asset column. A view is created once the asset views it reads exist, so a partial run still gets
the views it can answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from filelock import FileLock

from envfactory_dagster.catalog.columns import ASSET_COLUMNS, documented_columns


class AnalystView(NamedTuple):
    name: str
    reads: tuple[str, ...]  # asset views it needs
    description: str
    example: str
    sql: str


VIEWS = (
    AnalystView(
        "envs_per_domain",
        ("verified_envs",),
        "Verified environments, tools and services per domain.",
        "SELECT * FROM envs_per_domain ORDER BY environments DESC",
        """SELECT domain, count(*) AS environments, sum(tool_count) AS tools,
                  count(DISTINCT service) AS services
           FROM verified_envs GROUP BY domain""",
    ),
    AnalystView(
        "trajectories_per_env",
        ("verified_envs", "trajectories", "refined_trajectories"),
        "Per environment: trajectories executed and kept after refinement (a multi-service "
        "trajectory counts for each of its environments).",
        "SELECT * FROM trajectories_per_env ORDER BY trajectories DESC LIMIT 10",
        """SELECT v.domain, v.env_id, v.class_name,
                  (SELECT count(*) FROM trajectories t WHERE list_contains(t.env_ids, v.env_id))
                      AS trajectories,
                  (SELECT count(*) FROM refined_trajectories r WHERE list_contains(r.env_ids, v.env_id))
                      AS refined_trajectories
           FROM verified_envs v""",
    ),
    AnalystView(
        "env_resources",
        ("verified_envs", "authentic_resources"),
        "Each environment with each authentic resource file it was generated from: join any row "
        "carrying env_ids to it in one join to reach the resource file.",
        "SELECT r.id, e.source_path FROM rl_tasks r JOIN env_resources e "
        "ON list_contains(r.env_ids, e.env_id) LIMIT 5",
        """SELECT v.env_id, v.domain, v.class_name, a.id AS resource_id, a.source_path,
                  a.title AS resource_title, a.license, a.content_sha256
           FROM verified_envs v JOIN authentic_resources a ON list_contains(v.resource_ids, a.id)""",
    ),
    AnalystView(
        "rl_task_lineage",
        ("rl_tasks", "verified_envs", "authentic_resources"),
        "Every RL task row traced to the resource files of its environments.",
        "SELECT task_id, env_id, source_path FROM rl_task_lineage LIMIT 5",
        """SELECT r.id AS task_id, r.domain, r.split, r.trajectory_id, e.env_id, e.class_name,
                  e.resource_id, e.source_path, e.content_sha256
           FROM rl_tasks r JOIN env_resources e ON list_contains(r.env_ids, e.env_id)""",
    ),
)
# Views other views read (created first).
VIEW_READS = {"rl_task_lineage": ("env_resources",)}
# Assets whose first write can make an analyst view creatable (views bind at query time, so a
# view over an asset's view stays valid when that asset is written again).
ANALYST_INPUTS = frozenset(asset for view in VIEWS for asset in view.reads)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _values_view(name: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    values = ",\n".join("(" + ", ".join(_quote(v) for v in row) + ")" for row in rows)
    return f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM (VALUES {values}) AS t({", ".join(columns)})'


def readme_rows() -> list[tuple[str, str, str]]:
    rows = [(v.name, v.description, v.example) for v in VIEWS]
    rows.append(
        (
            "catalog_columns",
            "Every asset column: type and description.",
            "SELECT * FROM catalog_columns WHERE asset = 'rl_tasks'",
        )
    )
    rows += [
        (asset, "Asset table: every partition (domain) of the asset.", f"DESCRIBE {asset}")
        for asset in ASSET_COLUMNS
    ]
    return rows


def ensure_analyst_views(catalog_file: str, home: str | None = None) -> list[str]:
    """Create or replace README, catalog_columns and each analyst view whose inputs exist; returns
    the analyst views present. `home`: an object-store data home the asset views read (its
    filesystem is registered, so binding a view over them reads `s3://` offline)."""
    from envfactory_dagster.storage.duckdb_catalog import connect

    Path(catalog_file).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{catalog_file}.lock", timeout=60):
        con = connect(catalog_file, read_only=False, home=home)
        try:
            con.execute(_values_view("README", ("name", "what", "example"), readme_rows()))
            columns = [
                (asset, name, type_, text)
                for asset in ASSET_COLUMNS
                for name, type_, text in documented_columns(asset)
            ]
            con.execute(
                _values_view("catalog_columns", ("asset", "column_name", "type", "description"), columns)
            )
            present = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
            created = []
            for view in VIEWS:
                needs = set(view.reads) | set(VIEW_READS.get(view.name, ()))
                if needs <= present:
                    con.execute(f'CREATE OR REPLACE VIEW "{view.name}" AS {view.sql}')
                    present.add(view.name)
                    created.append(view.name)
            return created
        finally:
            con.close()
