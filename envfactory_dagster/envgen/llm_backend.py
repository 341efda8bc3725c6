"""LLM backend of EnvGen: the model proposes environments and writes (and revises) their code.

Where the LLM helps and where it must not decide:
- proposals: the proposer reads the resources (Markdown docs included: their operations are
  parsed too) and groups operations into environments; every cited operation must exist in a
  resource of the partition, otherwise the proposal is rejected with the reason;
- specs: built by the same schema inference as the template backend from the operations the
  proposal cites, so tool schemas stay grounded in the authentic resource (a deliberate choice:
  an LLM-invented schema could not be checked against anything);
- code: the module skeleton comes from the spec, the coder writes the tool bodies, the sandboxed
  verifier decides, the reviser fixes the failing tools (`revise_loop.synthesize_with_revisions`);
  every attempt is stored as an `env_code` row (with every call behind it in
  `revision_history_json`) and re-verified by `env_verification`, so only executed verdicts
  admit a version.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.revise_loop import RevisionAttempt, synthesize_with_revisions
from envfactory_dagster.envgen.stages import Rows, code_row
from envfactory_dagster.envgen.worlds import world_seed_states
from envfactory_dagster.ingest.normalized_spec import NormalizedSpec
from envfactory_dagster.lineage import content_id
from envfactory_dagster.llm.errors import BudgetExceeded, LLMNotConfigured, LLMOutputError, LLMProviderError
from envfactory_dagster.llm.gateway import LLMGateway

STAGE_PROPOSALS = "env_proposals"
MAX_OPERATIONS_LISTED = 400
LLM_ERRORS = (BudgetExceeded, LLMNotConfigured, LLMOutputError, LLMProviderError)


class ProposedEnvironment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class_name: str = Field(description="PascalCase Python class name, unique in the domain")
    title: str
    purpose: str = Field(description="one or two sentences: who uses it for what")
    operation_ids: list[str] = Field(description="cited operations as '<resource id>:<operation id>'")


class ProposalList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposals: list[ProposedEnvironment]


def resource_digest(resources: Rows) -> str:
    """What the proposer reads: each resource's id, title, description and its operations."""
    lines = []
    for row in resources:
        spec = NormalizedSpec.model_validate_json(row["spec_json"])
        lines.append(f"## {row['id']}: {spec.title}\n{spec.description[:600]}")
        for op in spec.operations[:MAX_OPERATIONS_LISTED]:
            where = f"{op.method.upper()} {op.path}" if op.method else "tool"
            lines.append(f"- {row['id']}:{op.operation_id} ({where}) {op.summary or op.description[:120]}")
    return "\n".join(lines)


def propose_environments_llm(
    resources: Rows, gateway: LLMGateway, *, domain: str, max_proposals: int = 20
) -> tuple[Rows, Rows, dict[str, Any]]:
    """Proposal rows (same shape as the template's, `backend="llm"`) and rejects with reasons."""
    known = {
        f"{row['id']}:{op.operation_id}"
        for row in resources
        for op in NormalizedSpec.model_validate_json(row["spec_json"]).operations
    }
    try:
        result = gateway.complete_structured(
            stage=STAGE_PROPOSALS,
            role="proposer",
            prompt="env_proposal",
            variables={
                "domain": domain,
                "existing_envs": "(none)",
                "resources": resource_digest(resources),
                "max_proposals": max_proposals,
            },
            output_model=ProposalList,
        )
    except LLM_ERRORS as exc:
        return [], [{"domain": domain, "stage": STAGE_PROPOSALS, "item_id": None, "reason": str(exc)}], {}
    rows, rejects, seen = [], [], set()
    for proposal in result.value.proposals:
        unknown = [op for op in proposal.operation_ids if op not in known]
        if unknown or not proposal.operation_ids or proposal.class_name in seen:
            reason = f"unknown operations {unknown}" if unknown else "no operations or duplicate class name"
            rejects.append(
                {
                    "domain": domain,
                    "stage": STAGE_PROPOSALS,
                    "item_id": proposal.class_name,
                    "reason": f"proposal {proposal.class_name}: {reason}",
                }
            )
            continue
        seen.add(proposal.class_name)
        resource_ids = sorted({op.partition(":")[0] for op in proposal.operation_ids})
        body = {
            "domain": domain,
            "class_name": proposal.class_name,
            "title": proposal.title,
            "purpose": proposal.purpose,
            "entities": [],
            "operation_ids": list(proposal.operation_ids),
            "resource_ids": resource_ids,
            "backend": "llm",
        }
        rows.append({"id": content_id(body, "prop_"), **body, **result.lineage()})
    return rows, rejects, {"proposals": len(rows), "rejected": len(rejects), **gateway.usage().as_metadata()}


def env_code_rows_llm(
    spec_rows: Rows, gateway: LLMGateway, *, base_seed: int, max_revisions: int = 3
) -> tuple[Rows, Rows, dict[str, Any]]:
    """Every synthesized version (coder, then reviser attempts) as an `env_code` row."""
    rows, rejects, outcomes = [], [], []
    attempts_by_env: list[list[RevisionAttempt]] = []
    specs = [EnvSpec.model_validate_json(row["spec_json"]) for row in spec_rows]
    seed_states = world_seed_states(specs, base_seed)  # one per world, shared by its environments
    for row, spec in zip(spec_rows, specs, strict=True):
        seed_state = seed_states[spec.world_id or str(spec.proposal_id)]
        outcome = synthesize_with_revisions(
            spec,
            seed_state,
            gateway,
            max_revisions=max_revisions,
            repair_rounds=gateway.settings.repair_retries,
        )
        outcomes.append(outcome.stop_reason)
        attempts_by_env.append(outcome.attempts)
        if not outcome.attempts:
            rejects.append(
                {
                    "domain": row["domain"],
                    "stage": "env_code",
                    "item_id": row["id"],
                    "reason": outcome.stop_detail,
                    "resource_ids": list(row["resource_ids"]),
                }
            )
        for attempt in outcome.attempts:
            prompt_name, _, prompt_version = attempt.prompt.partition("@")
            code = code_row(
                row,
                attempt.source,
                seed_state,
                attempt=attempt.attempt,
                backend="llm",
                model=attempt.model,
                prompt_version=f"{prompt_name}@{prompt_version}",
            )
            code["revision_history_json"] = json.dumps(
                [a.model_dump(mode="json", exclude={"source"}) for a in outcome.attempts]
            )
            rows.append(code)
    every_attempt = [a for o in attempts_by_env for a in o]
    metrics = {
        "modules": len(rows),
        "stop_reasons": {r: outcomes.count(r) for r in set(outcomes)},
        "coder_calls": sum(len(a.calls) for a in every_attempt),
        "repair_calls": sum(a.repairs for a in every_attempt),
        "truncated_answers": sum(c.truncated for a in every_attempt for c in a.calls),
        **gateway.usage().as_metadata(),
    }
    return rows, rejects, metrics
