"""Stage group `export`: calibrated refinement, SFT rows and RL tasks, and their training-format files."""

# No `from __future__ import annotations` here: Dagster reads the `context` annotation at runtime.

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from assets.checks import check_results, check_specs
from assets.frames import records
from assets.metadata import as_metadata
from envfactory_dagster.export.dataset_cards import rl_card, sft_card
from envfactory_dagster.export.passk import DIFFICULTY_COLUMNS, pass_at_k
from envfactory_dagster.export.rl_task_model import RLTask
from envfactory_dagster.export.rl_tasks import (
    build_rl_tasks,
    gold_reward_on_record,
    rl_task_from_row,
    rl_task_guards,
)
from envfactory_dagster.export.sft import (
    build_sft_rows,
    write_openai_jsonl,
    write_sft_parquet,
    write_sharegpt,
)
from envfactory_dagster.export.splits import split_and_filter
from envfactory_dagster.export.verl_export import write_verl_parquet
from envfactory_dagster.lineage import CODE_VERSION, derived_seed
from envfactory_dagster.llm.config import cache_dir_for_home
from envfactory_dagster.quality.guards import apply_guards, guard_figures
from envfactory_dagster.quality.suites import (
    refined_partition_suite,
    refined_trajectories_suite,
    rl_tasks_partition_suite,
    rl_tasks_suite,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.refined_trajectories import (
    partition_figures,
    refine_trajectories,
    refinement_guards,
)
from envfactory_dagster.serve.registry import write_environment_files
from envfactory_dagster.storage.export_files import export_directory, replace_directory
from envfactory_dagster.storage.partition_store import PartitionStore
from resources.llm import LLM_POOL, LLMResource
from resources.settings import EnvFactorySettings

GROUP = "export"


@contextmanager
def answer_gateway(settings: EnvFactorySettings, llm: LLMResource) -> Iterator[Any]:
    """The LLM gateway that writes turn answers on the llm backend; None offline."""
    if settings.backend != "llm":
        yield None
        return
    with llm.gateway(cache_dir_for_home(settings.home)) as gateway:
        yield gateway


class RefinementConfig(dg.Config):
    target_implicitness: float = 0.5
    ambiguity_share: float = 0.2
    validation_share: float = 0.1
    rl_share: float = 0.37
    decontamination: str = "tag"  # "drop" removes benchmark look-alikes, "tag" only marks them


def build_export_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = {"partitions_def": partitions, "group_name": GROUP, "code_version": CODE_VERSION}

    @dg.multi_asset(
        outs={
            "refined_trajectories": dg.AssetOut(
                description="Trajectories with calibrated, implicit-intent queries; every hidden value has "
                "a grounding proof checked by execution; split (train/validation) and pool (sft/rl).",
                code_version=CODE_VERSION,
            ),
            "refinement_rejects": dg.AssetOut(
                description="Trajectories dropped by refinement, deduplication or decontamination, "
                "with reasons.",
                code_version=CODE_VERSION,
            ),
        },
        partitions_def=partitions,
        group_name=GROUP,
        pool=LLM_POOL,
        check_specs=check_specs(
            "refined_trajectories", refined_trajectories_suite, blocking=True, partitions=partitions
        )
        + check_specs("refined_trajectories", refined_partition_suite, blocking=True, partitions=partitions),
    )
    def refined_trajectories(
        context: dg.AssetExecutionContext,
        config: RefinementConfig,
        settings: EnvFactorySettings,
        llm: LLMResource,
        trajectories: pd.DataFrame,
        verified_envs: pd.DataFrame,
    ):
        """Implicit reference, omission, action compression, goal expansion and controlled ambiguity."""
        envs = records(verified_envs)
        seed = derived_seed(settings.seed, context.partition_key, "refined_trajectories")
        options = {
            "target_implicitness": config.target_implicitness,
            "seed": seed,
            "ambiguity_share": config.ambiguity_share,
        }
        if settings.backend == "llm":
            with llm.gateway(cache_dir_for_home(settings.home)) as gateway:
                rows, rejects, metrics = refine_trajectories(
                    records(trajectories), envs, backend="llm", gateway=gateway, **options
                )
                metrics.update(gateway.usage().as_metadata())
        else:
            rows, rejects, metrics = refine_trajectories(records(trajectories), envs, **options)
        kept, dropped, split_metrics = split_and_filter(
            rows,
            envs,
            validation_share=config.validation_share,
            rl_share=config.rl_share,
            seed=seed,
            decontamination=config.decontamination,
        )
        kept, unusable = apply_guards(
            kept, refinement_guards(envs), stage="refined_trajectories", carry=("id", "trajectory_id")
        )
        rejects += unusable
        metrics["rejected_by_kind"] = dict(
            Counter(metrics["rejected_by_kind"]) + Counter(r["kind"] for r in unusable)
        )
        frame = pd.DataFrame(kept)
        figures = partition_figures(kept, rejects, envs)
        yield dg.Output(
            frame,
            output_name="refined_trajectories",
            metadata=as_metadata({**metrics, **split_metrics, **figures}),
        )
        yield dg.Output(
            pd.DataFrame(rejects + dropped),
            output_name="refinement_rejects",
            metadata=as_metadata(
                {"dagster/row_count": len(rejects) + len(dropped), **metrics["rejected_by_kind"]}
            ),
        )
        yield from check_results(
            "refined_trajectories", refined_trajectories_suite, frame, context.partition_key
        )
        yield from check_results(
            "refined_trajectories", refined_partition_suite, pd.DataFrame([figures]), context.partition_key
        )

    @dg.asset(**common, pool=LLM_POOL)
    def sft_dataset(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        refined_trajectories: pd.DataFrame,
        verified_envs: pd.DataFrame,
        authentic_resources: pd.DataFrame,
    ) -> dg.Output:
        """One SFT conversation per kept trajectory (OpenAI messages, one assistant message per
        dependency level, closing answers; tools), exported under `$ENVFACTORY_HOME/exports/sft` as
        OpenAI JSONL, ShareGPT/LLaMA-Factory and per-split Parquet with a dataset card."""
        envs = records(verified_envs)
        with answer_gateway(settings, llm) as gateway:
            rows, errors, metrics = build_sft_rows(
                records(refined_trajectories),
                envs,
                backend=settings.backend,
                gateway=gateway,
                conversational=settings.conversational,
            )
        for error in errors:
            context.log.warning(f"{error}")
        domain = context.partition_key

        def write(directory: Path) -> None:
            write_openai_jsonl(rows, directory / "openai.jsonl")
            write_sharegpt(rows, directory / "sharegpt")
            splits = write_sft_parquet(rows, directory)
            card = sft_card(domain, rows, splits, envs, records(authentic_resources))
            (directory / "README.md").write_text(card, encoding="utf-8")

        target = replace_directory(export_directory(settings.home, "sft", domain), write)
        return dg.Output(
            pd.DataFrame(rows),
            metadata=as_metadata({**metrics, "errors": len(errors), "export_dir": str(target)}),
        )

    @dg.asset(
        **common,
        pool=LLM_POOL,
        check_specs=check_specs("rl_tasks", rl_tasks_suite, blocking=True, partitions=partitions)
        + check_specs("rl_tasks", rl_tasks_partition_suite, blocking=True, partitions=partitions),
    )
    def rl_tasks(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        refined_trajectories: pd.DataFrame,
        verified_envs: pd.DataFrame,
        authentic_resources: pd.DataFrame,
    ):
        """RL tasks, one per turn with its conversation so far: initial state, gold calls (masked
        arguments), gold final states, reward spec; verl Parquet per split with a dataset card under
        `$ENVFACTORY_HOME/exports/rl`. Each task's gold replay is scored."""
        envs = records(verified_envs)
        with answer_gateway(settings, llm) as gateway:
            rows, errors, metrics = build_rl_tasks(
                records(refined_trajectories),
                envs,
                backend=settings.backend,
                gateway=gateway,
                conversational=settings.conversational,
            )
        records_by_id = {
            r["trajectory_id"]: Trajectory.model_validate_json(r["trajectory_json"])
            for r in records(refined_trajectories)
        }
        parsed_states: dict[str, Any] = {}  # each turn boundary's state parsed once
        for row in rows:
            # the STORED row (read back from its columns) against its trajectory's record
            row["gold_reward"] = gold_reward_on_record(
                rl_task_from_row(row, parsed_states), records_by_id[row["trajectory_id"]]
            ).total
        del parsed_states
        rows, unusable = apply_guards(rows, rl_task_guards(), stage="rl_tasks")
        for error in errors + [r["reason"] for r in unusable]:
            context.log.warning(f"{error}")
        domain = context.partition_key

        if "://" not in settings.home:  # what `envfactory serve` reads instead of the Parquet registry
            write_environment_files(settings.home, envs)

        def write(directory: Path) -> None:
            splits = write_verl_parquet(rows, directory)
            card = rl_card(domain, rows, splits, envs, records(authentic_resources))
            (directory / "README.md").write_text(card, encoding="utf-8")

        target = replace_directory(export_directory(settings.home, "rl", domain), write)
        frame = pd.DataFrame(rows)
        metadata = {**metrics, "errors": len(errors), "export_dir": str(target), "rejects": unusable}
        yield dg.Output(frame, metadata=as_metadata(metadata))
        yield from check_results("rl_tasks", rl_tasks_suite, frame, domain)
        figures = pd.DataFrame([{"tasks": len(rows), **guard_figures(len(rows), unusable)}])
        yield from check_results("rl_tasks", rl_tasks_partition_suite, figures, domain)

    # rl_tasks is a dependency, not a loaded input: it is the largest table (two world states
    # per task), and offline no solver reads it; it is read from the store only when one runs
    @dg.asset(**common, pool=LLM_POOL, deps=[rl_tasks])
    def task_difficulty(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        verified_envs: pd.DataFrame,
    ) -> dg.Output:
        """Pass@k per RL task on the LLM path: k solver rollouts with real tool calls on fresh
        environments, the pass rate (difficulty = 1 - pass rate) and the judge's pick among the
        rollouts. Offline (no solver model): no rows, and the reason in the metadata."""

        def tasks() -> Iterator[RLTask]:
            stored = PartitionStore(settings.home).read("rl_tasks", context.partition_key)
            yield from (rl_task_from_row(row) for row in records(stored))

        with answer_gateway(settings, llm) as gateway:
            rows, errors, metrics = pass_at_k(tasks(), records(verified_envs), gateway)
            usage = gateway.usage().as_metadata() if gateway is not None else {}
        frame = pd.DataFrame(rows, columns=list(DIFFICULTY_COLUMNS))
        return dg.Output(frame, metadata=as_metadata({**metrics, **usage, "errors": errors[:20]}))

    return [refined_trajectories, sft_dataset, rl_tasks, task_difficulty]
