"""Row-level core of the EnvGen assets: specs -> code rows -> verification rows -> the registry.

Each function takes the upstream rows (dicts) of one domain partition and returns
`(rows, rejects, metrics)`: rows for the asset, rejects with their reasons (never dropped
silently), counters for the asset's metadata. The template backend is used here; the LLM backend
(`envgen.llm_backend`) produces rows of the same shape and goes through the same verification.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from envfactory_dagster.envgen.codegen import generate_module
from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.lookalike import lookalike_tags
from envfactory_dagster.envgen.sandbox import SandboxPolicy
from envfactory_dagster.envgen.spec_inference import EnvSpecError, build_env_spec
from envfactory_dagster.envgen.user_only import mark_user_only_tools, user_only_tools
from envfactory_dagster.envgen.verification import MIN_TESTS_PER_TOOL, VerificationReport, verify_batch
from envfactory_dagster.envgen.worlds import (
    environment_spec,
    group_worlds,
    world_proposal,
    world_seed_states,
)
from envfactory_dagster.ingest.normalized_spec import NormalizedSpec
from envfactory_dagster.lineage import canonical_json, content_id, sha256_hex
from envfactory_dagster.quality.guards import RowGuard, apply_guards, guard_figures

Rows = list[dict[str, Any]]
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def env_spec_rows(proposals: Rows, resources: Rows) -> tuple[Rows, Rows, dict[str, Any]]:
    """One EnvSpec per proposal, inferred per world (`envgen.worlds`): the proposals of one service
    share the entities inferred from all of the service's operations, so they share one state."""
    specs_by_resource = {r["id"]: NormalizedSpec.model_validate_json(r["spec_json"]) for r in resources}
    rows, rejects = [], []
    marking_problems: list[str] = []
    worlds = group_worlds(proposals, specs_by_resource)
    for world in worlds:
        try:
            world_spec = build_env_spec(world_proposal(world), specs_by_resource)
        except EnvSpecError as exc:
            rejects += [_reject(p, "env_specs", f"world {world.service}: {exc}") for p in world.proposals]
            continue
        for proposal in world.proposals:
            spec, problems = mark_user_only_tools(
                environment_spec(world_spec, world, proposal), specs_by_resource
            )
            marking_problems += problems
            if not spec.tools:
                rejects.append(_reject(proposal, "env_specs", f"{spec.class_name}: no tool left"))
                continue
            invalid = invalid_tool_schemas(spec)
            if invalid:
                rejects.append(_reject(proposal, "env_specs", f"{spec.class_name}: {'; '.join(invalid)}"))
                continue
            row = spec_row(
                spec,
                proposal,
                backend=proposal.get("backend", "template"),
                model=proposal.get("llm_model"),
                prompt_version=proposal.get("prompt_version"),
            )
            row["source_write_operations"] = source_write_operations(proposal, specs_by_resource, spec)
            rows.append(row)
    metrics = {
        "specs": len(rows),
        "rejected": len(rejects),
        "worlds": len(worlds),
        "environments_per_world": dict(sorted(Counter(len(w.proposals) for w in worlds).items())),
        **_tool_stats(rows),
        **_user_only_stats(rows),
        "user_only_mark_problems": marking_problems[:5],
    }
    return rows, rejects, metrics


def _user_only_stats(rows: Rows) -> dict[str, int]:
    """User-only tools by ground: the document's mark, or the secret-input heuristic."""
    marked = [t for r in rows for t in json.loads(r["user_only_tools_json"])]
    return {
        "user_only_tools": len(marked),
        "user_only_by_mark": sum(t["rule"] == "mark" for t in marked),
        "user_only_by_secret_input_heuristic": sum(t["rule"] == "secret_input_heuristic" for t in marked),
    }


def invalid_tool_schemas(spec: EnvSpec) -> list[str]:
    """Tool input/output schemas that are not valid JSON Schema (2020-12), one message each.

    Checked here, once per spec, rather than in the sandbox for every module: verification then
    requires each module's schemas to equal the spec's."""
    problems = []
    for tool in spec.tools:
        for which, schema in (("input", tool.input_schema), ("output", tool.output_schema)):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                problems.append(f"tool {tool.name!r}: {which} schema is not valid JSON Schema: {exc.message}")
    return problems


def source_write_operations(proposal: dict[str, Any], specs: dict[str, NormalizedSpec], spec: EnvSpec) -> int:
    """How many of the proposal's source operations write: HTTP POST/PUT/PATCH/DELETE, except those
    the inference read as queries (a POST search or lookup becomes a read tool), or, for MCP tools
    (no method), the tools the inference classed as writes. Zero = a read-only API, the one case
    where an environment may lack a write tool. A write operation the environment lost (no tool)
    still counts, so the registry can tell a read-only API from an environment that dropped its
    writes."""
    tool_kinds = {t.source_operation_id: t.kind for t in spec.tools}
    count = 0
    for qualified in proposal["operation_ids"]:
        resource_id, _, operation_id = str(qualified).partition(":")
        op = next(o for o in specs[resource_id].operations if o.operation_id == operation_id)
        if op.method:
            count += op.method in WRITE_METHODS and tool_kinds.get(qualified) != "read"
        else:
            count += tool_kinds.get(qualified) == "write"
    return count


def spec_row(
    spec: EnvSpec,
    proposal: dict[str, Any],
    *,
    backend: str,
    model: str | None = None,
    prompt_version: str | None = None,
) -> dict[str, Any]:
    spec_json = canonical_json(spec.model_dump(mode="json"))
    return {
        "id": content_id(spec_json, "spec_"),
        "domain": spec.domain,
        "proposal_id": proposal["id"],
        "class_name": spec.class_name,
        "title": spec.title,
        "tool_count": len(spec.tools),
        "write_tool_count": sum(t.kind == "write" for t in spec.tools),
        "entity_count": len(spec.entities),
        "spec_json": spec_json,
        "user_only_tools_json": canonical_json(user_only_tools(spec)),
        "world_id": spec.world_id,
        "service": spec.service,
        "source_write_operations": None,
        "resource_ids": list(proposal["resource_ids"]),
        "backend": backend,
        "model": model,
        "prompt_version": prompt_version,
    }


def env_code_rows(spec_rows: Rows, *, base_seed: int) -> tuple[Rows, Rows, dict[str, Any]]:
    """Template code generation for each spec; one seed state per world, shared by its environments."""
    specs = [EnvSpec.model_validate_json(row["spec_json"]) for row in spec_rows]
    seed_states = world_seed_states(specs, base_seed)
    rows, rejects = [], []
    for row, spec in zip(spec_rows, specs, strict=True):
        try:
            source = generate_module(spec)
        except (ValueError, KeyError, TypeError) as exc:  # a spec the generator cannot express
            rejects.append(_reject(row, "env_code", f"{spec.class_name}: {type(exc).__name__}: {exc}"))
            continue
        seed_state = seed_states[spec.world_id or str(spec.proposal_id)]
        rows.append(code_row(row, source, seed_state, attempt=1, backend="template"))
    return rows, rejects, {"modules": len(rows), "rejected": len(rejects)}


def code_row(
    spec_row_: dict[str, Any],
    source: str,
    seed_state: dict[str, Any],
    *,
    attempt: int,
    backend: str,
    model: str | None = None,
    prompt_version: str | None = None,
) -> dict[str, Any]:
    code_sha256 = sha256_hex(source)
    return {
        "id": f"code_{code_sha256[:16]}",
        "domain": spec_row_["domain"],
        "env_spec_id": spec_row_["id"],
        "proposal_id": spec_row_["proposal_id"],
        "class_name": spec_row_["class_name"],
        "attempt": attempt,
        "source": source,
        "code_sha256": code_sha256,
        "line_count": source.count("\n") + 1,
        "seed_state_json": canonical_json(seed_state),
        "resource_ids": list(spec_row_["resource_ids"]),
        "backend": backend,
        "model": model,
        "prompt_version": prompt_version,
    }


def env_verification_rows(
    code_rows: Rows, spec_rows: Rows, policy: SandboxPolicy | None = None
) -> tuple[Rows, dict[str, Any]]:
    """Verify every module in the sandbox (one batch); one report row per module, pass or fail."""
    specs = {r["id"]: EnvSpec.model_validate_json(r["spec_json"]) for r in spec_rows}
    items = [(specs[c["env_spec_id"]], c["source"], json.loads(c["seed_state_json"])) for c in code_rows]
    reports = verify_batch(items, policy=policy) if items else []
    rows = [verification_row(code, report) for code, report in zip(code_rows, reports, strict=True)]
    failed_checks = Counter(f.split(":", 1)[0] for r in reports if not r.passed for f in r.failures)
    metrics = {
        "verified": len(rows),
        "passed": sum(r["passed"] for r in rows),
        "failed": sum(not r["passed"] for r in rows),
        "failures_by_check": dict(failed_checks),
        "tests_run": sum(r.tests_run for r in reports),
        "seconds_per_environment": round(statistics.fmean([r.duration_s for r in reports]), 4)
        if reports
        else None,
    }
    return rows, metrics


def verification_row(
    code: dict[str, Any], report: VerificationReport, attempts: Rows | None = None
) -> dict[str, Any]:
    per_tool = report.tests_per_tool
    return {
        "id": content_id([code["id"], report.replay_digest, report.passed], "ver_"),
        "domain": code["domain"],
        "env_code_id": code["id"],
        "env_spec_id": code["env_spec_id"],
        "class_name": code["class_name"],
        "code_sha256": report.code_sha256,
        "passed": report.passed,
        "tests_run": report.tests_run,
        "tests_passed": report.tests_passed,
        "min_tests_per_tool": min(per_tool.values()) if per_tool else 0,
        "roundtrip_ok": report.roundtrip_ok,
        "determinism_ok": report.determinism_ok,
        "replay_digest": report.replay_digest,
        "latency_p50_us": report.latency_p50_us,
        "latency_p95_us": report.latency_p95_us,
        "sandbox_status": report.sandbox_status,
        "network_isolated": report.network_isolated,
        "sandbox_runs_json": json.dumps(report.sandbox_runs),
        "duration_s": report.duration_s,
        "failures_json": json.dumps(report.failures),
        "checks_json": json.dumps([c.model_dump(mode="json") for c in report.checks]),
        "tests_per_tool_json": json.dumps(per_tool, sort_keys=True),
        "attempts_json": json.dumps(attempts or []),
        "resource_ids": list(code["resource_ids"]),
    }


def verified_env_rows(
    verification_rows: Rows, code_rows: Rows, spec_rows: Rows
) -> tuple[Rows, dict[str, Any]]:
    """The registry: one row per environment whose version passed verification."""
    codes = {c["id"]: c for c in code_rows}
    specs = {s["id"]: s for s in spec_rows}
    rows = []
    for ver in verification_rows:
        if not ver["passed"]:
            continue
        code, spec_row_ = codes[ver["env_code_id"]], specs[ver["env_spec_id"]]
        spec = EnvSpec.model_validate_json(spec_row_["spec_json"])
        seed_state = json.loads(code["seed_state_json"])
        rows.append(
            {
                "env_id": f"env_{code['code_sha256'][:16]}",
                "id": f"env_{code['code_sha256'][:16]}",
                "domain": ver["domain"],
                "world_id": spec.world_id or f"env_{code['code_sha256'][:16]}",
                "service": spec.service,
                "class_name": code["class_name"],
                "title": spec.title,
                "description": spec.description,
                "source": code["source"],
                "code_sha256": code["code_sha256"],
                "spec_json": spec_row_["spec_json"],
                "user_only_tools_json": spec_row_.get("user_only_tools_json") or "[]",
                "seed_state_json": code["seed_state_json"],
                "tool_count": len(spec.tools),
                "write_tool_count": sum(t.kind == "write" for t in spec.tools),
                "read_only_source": spec_row_["source_write_operations"] == 0,
                "source_write_operations": spec_row_["source_write_operations"],
                "verification_passed": ver["passed"],
                "tool_signature": tool_signature(spec),
                "tools_with_schemas": sum(bool(t.input_schema) and bool(t.output_schema) for t in spec.tools),
                "entity_count": len(spec.entities),
                "state_rows": sum(len(v) for v in seed_state.values() if isinstance(v, dict)),
                "state_bytes": len(code["seed_state_json"]),
                "min_tests_per_tool": ver["min_tests_per_tool"],
                "verification_id": ver["id"],
                "replay_digest": ver["replay_digest"],
                "env_code_id": code["id"],
                "env_spec_id": spec_row_["id"],
                "proposal_id": spec_row_["proposal_id"],
                "resource_ids": list(spec_row_["resource_ids"]),
                "lookalike_tags": lookalike_tags(spec),
                "backend": code["backend"],
                "model": code["model"],
                "prompt_version": code["prompt_version"],
            }
        )
    kept, rejects = apply_guards(rows, registry_guards(), stage="verified_envs", id_key="env_id")
    figures = guard_figures(len(kept), rejects)
    return kept, {"environments": len(kept), **_tool_stats(kept), **figures, "rejects": rejects}


def registry_guards() -> list[RowGuard]:
    """What keeps a verified environment out of the registry (each a reject with its reason): one
    environment's flaw drops that environment, never the partition. Duplicates come last, so only
    a kept environment claims its name and tool set."""
    names: set[str] = set()
    tool_sets: set[str] = set()

    def first(seen: set[str], value: str) -> bool:
        if value in seen:
            return False
        seen.add(value)
        return True

    return [
        RowGuard(
            "no_write_tool",
            lambda r: r["write_tool_count"] >= 1 or r["read_only_source"],
            lambda r: (
                f"{r['class_name']} has no write tool, but {r['source_write_operations']} of its "
                "source operations write"
            ),
        ),
        RowGuard(
            "tool_without_schemas",
            lambda r: r["tools_with_schemas"] == r["tool_count"],
            lambda r: (
                f"{r['class_name']}: {r['tool_count'] - r['tools_with_schemas']} tool(s) lack an "
                "input or output schema"
            ),
        ),
        RowGuard(
            "too_few_tests",
            lambda r: r["min_tests_per_tool"] >= MIN_TESTS_PER_TOOL,
            lambda r: f"{r['class_name']}: a tool reached by only {r['min_tests_per_tool']} test(s)",
        ),
        RowGuard(
            "duplicate_name",
            lambda r: first(names, r["class_name"]),
            lambda r: f"{r['class_name']}: an earlier environment of the domain has this class name",
        ),
        RowGuard(
            "duplicate_tool_set",
            lambda r: first(tool_sets, r["tool_signature"]),
            lambda r: f"{r['class_name']}: an earlier environment has the same set of tool signatures",
        ),
    ]


def tool_signature(spec: EnvSpec) -> str:
    """Hash of the set of tool signatures (name + input property names): equal sets, equal hash."""
    signatures = sorted(
        f"{t.name}({','.join(sorted(t.input_schema.get('properties', {})))})" for t in spec.tools
    )
    return sha256_hex(canonical_json(signatures))[:16]


def _tool_stats(rows: Rows) -> dict[str, Any]:
    counts = [r["tool_count"] for r in rows]
    return {
        "tools": sum(counts),
        "median_tools_per_env": statistics.median(counts) if counts else 0,
    }


def _reject(row: dict[str, Any], stage: str, reason: str) -> dict[str, Any]:
    return {
        "domain": row.get("domain"),
        "stage": stage,
        "item_id": row.get("id"),
        "reason": reason[:2000],
        "resource_ids": list(row.get("resource_ids") or []),
    }


def registry_for_domain(resources_dir: Path, domain: str, *, base_seed: int = 0) -> Rows:
    """The `verified_envs` rows of one domain, template backend, without Dagster (notebooks,
    benchmarks, tests): ingest -> proposals -> specs -> code -> sandboxed verification -> registry."""
    from envfactory_dagster.envgen.proposals import propose_environments
    from envfactory_dagster.ingest.authentic_resources import ingest_domain

    resources = ingest_domain(resources_dir, domain).resources
    proposals, _, _ = propose_environments(resources)
    specs, _, _ = env_spec_rows(proposals, resources)
    codes, _, _ = env_code_rows(specs, base_seed=base_seed)
    verifications, _ = env_verification_rows(codes, specs)
    registry, _ = verified_env_rows(verifications, codes, specs)
    return registry
