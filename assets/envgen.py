"""Stage group `envgen`: proposals -> specs -> code -> sandboxed verification -> the registry."""

# No `from __future__ import annotations` here: Dagster reads the `context` annotation at runtime.

import dagster as dg
import pandas as pd

from assets.checks import check_results, check_specs
from assets.frames import records
from assets.metadata import as_metadata
from envfactory_dagster.envgen.llm_backend import env_code_rows_llm, propose_environments_llm
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.sandbox import SandboxPolicy
from envfactory_dagster.envgen.stages import (
    env_code_rows,
    env_spec_rows,
    env_verification_rows,
    verified_env_rows,
)
from envfactory_dagster.lineage import CODE_VERSION
from envfactory_dagster.llm.config import cache_dir_for_home
from envfactory_dagster.quality.suites import (
    verified_envs_partition_suite,
    verified_envs_suite,
    world_quality_suite,
)
from envfactory_dagster.quality.world_quality import world_quality_row
from resources.llm import LLM_POOL, LLMResource
from resources.settings import EnvFactorySettings

GROUP = "envgen"


def _frame(rows: list[dict], context: dg.AssetExecutionContext) -> pd.DataFrame:
    if not rows:
        context.log.warning("no rows for this partition")
    return pd.DataFrame(rows)


def _log_rejects(context: dg.AssetExecutionContext, rejects: list[dict]) -> None:
    for reject in rejects:
        context.log.warning(f"rejected {reject['item_id']}: {reject['reason']}")


def build_envgen_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = {"partitions_def": partitions, "group_name": GROUP, "code_version": CODE_VERSION}

    @dg.asset(**common, pool=LLM_POOL)
    def env_proposals(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        authentic_resources: pd.DataFrame,
    ) -> dg.Output:
        """Proposed environments, each citing its resource ids. Template: one per workflow area (tag)
        of a resource, small related resources merged. LLM: the proposer groups the operations
        (Markdown docs included); cited operations must exist."""
        resources = records(authentic_resources)
        if settings.backend == "llm":
            with llm.gateway(cache_dir_for_home(settings.home)) as gateway:
                proposals, errors, metrics = propose_environments_llm(
                    resources, gateway, domain=context.partition_key
                )
        else:
            proposals, errors, metrics = propose_environments(resources)
        for error in errors:
            context.log.warning(error["reason"])
        return dg.Output(
            _frame(proposals, context),
            metadata=as_metadata({**metrics, "error_reasons": [e["reason"] for e in errors]}),
        )

    @dg.asset(**common)
    def env_specs(
        context: dg.AssetExecutionContext, env_proposals: pd.DataFrame, authentic_resources: pd.DataFrame
    ) -> dg.Output:
        """Environment specs: state schema (entities, keys, foreign keys, enums), tools with input and
        output JSON schemas, read/write kind, preconditions and effects."""
        rows, rejects, metrics = env_spec_rows(records(env_proposals), records(authentic_resources))
        _log_rejects(context, rejects)
        return dg.Output(_frame(rows, context), metadata=as_metadata({**metrics, "rejects": rejects}))

    @dg.asset(**common, pool=LLM_POOL)
    def env_code(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        env_specs: pd.DataFrame,
        authentic_resources: pd.DataFrame,
    ) -> dg.Output:
        """Python modules per environment version (source + sha256) with their seeded initial state.
        Template: generated from the spec. LLM: the coder's and reviser's attempts, every one kept
        (and re-verified by `env_verification`)."""
        specs = records(env_specs)
        if settings.backend == "llm":
            with llm.gateway(cache_dir_for_home(settings.home)) as gateway:
                rows, rejects, metrics = env_code_rows_llm(specs, gateway, base_seed=settings.seed)
        else:
            rows, rejects, metrics = env_code_rows(specs, base_seed=settings.seed)
        _log_rejects(context, rejects)
        return dg.Output(_frame(rows, context), metadata=as_metadata({**metrics, "rejects": rejects}))

    @dg.asset(**common)
    def env_verification(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        env_code: pd.DataFrame,
        env_specs: pd.DataFrame,
    ) -> dg.Output:
        """Executed verification of every module in a sandboxed subprocess: imports, schemas, state
        round-trip, generated tests per tool, declared effects, determinism, latency."""
        policy = SandboxPolicy(
            allow_network=settings.sandbox_allow_network, allow_root=settings.sandbox_allow_root
        )
        rows, metrics = env_verification_rows(records(env_code), records(env_specs), policy)
        for row in rows:
            if not row["passed"]:
                context.log.warning(f"{row['class_name']} failed verification: {row['failures_json'][:500]}")
        return dg.Output(_frame(rows, context), metadata=as_metadata(metrics))

    @dg.asset(
        **common,
        check_specs=check_specs("verified_envs", verified_envs_suite, blocking=True, partitions=partitions)
        + check_specs("verified_envs", verified_envs_partition_suite, blocking=True, partitions=partitions),
    )
    def verified_envs(
        context: dg.AssetExecutionContext,
        env_verification: pd.DataFrame,
        env_code: pd.DataFrame,
        env_specs: pd.DataFrame,
    ):
        """The registry: environments whose version passed verification, with version hash, lineage
        to proposal and resources, tool count, state size and benchmark look-alike tags."""
        rows, metrics = verified_env_rows(records(env_verification), records(env_code), records(env_specs))
        _log_rejects(context, metrics["rejects"])
        frame = _frame(rows, context)
        yield dg.Output(frame, metadata=as_metadata(metrics))
        domain = context.partition_key
        yield from check_results("verified_envs", verified_envs_suite, frame, domain)
        figures = pd.DataFrame([{k: metrics[k] for k in ("kept", "guard_rejected_share")}])
        yield from check_results("verified_envs", verified_envs_partition_suite, figures, domain)

    @dg.asset(
        **common,
        check_specs=check_specs("world_quality", world_quality_suite, blocking=False, partitions=partitions),
    )
    def world_quality(context: dg.AssetExecutionContext, verified_envs: pd.DataFrame):
        """How realistic the partition's world is: valid currency/country codes, ordered start/end
        pairs, lorem-free text, consistent totals, person names only on people, write tools with
        business rules, the rule mutation kill rate, ids per service. Measures; filters nothing."""
        row = world_quality_row(records(verified_envs), context.partition_key)
        frame = pd.DataFrame([row])
        yield dg.Output(frame, metadata=as_metadata({k: v for k, v in row.items() if k != "domain"}))
        yield from check_results("world_quality", world_quality_suite, frame, context.partition_key)

    return [env_proposals, env_specs, env_code, env_verification, verified_envs, world_quality]
