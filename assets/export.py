"""Stage group `export`: calibrated refinement, SFT rows and RL tasks, and their training-format files."""

# No `from __future__ import annotations` here: Dagster reads the `context` annotation at runtime.

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.checks import check_results, check_specs
from assets.frames import records
from assets.metadata import as_metadata
from envfactory_dagster.export.rl_tasks import (
    build_rl_tasks,
    replay_rl_task,
    rl_task_from_row,
    write_verl_parquet,
)
from envfactory_dagster.export.sft import build_sft_rows, write_hf_parquet, write_openai_jsonl, write_sharegpt
from envfactory_dagster.export.splits import split_and_filter
from envfactory_dagster.lineage import CODE_VERSION, derived_seed
from envfactory_dagster.llm.config import cache_dir_for_home
from envfactory_dagster.quality.suites import (
    refined_partition_suite,
    refined_trajectories_suite,
    rl_tasks_suite,
)
from envfactory_dagster.querygen.replay import environments_by_id
from envfactory_dagster.refine.refined_trajectories import partition_figures, refine_trajectories
from envfactory_dagster.storage.export_files import export_directory, replace_directory
from resources.llm import LLM_POOL, LLMResource
from resources.settings import EnvFactorySettings

GROUP = "export"


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
        check_specs=check_specs("refined_trajectories", refined_trajectories_suite, blocking=True)
        + check_specs("refined_trajectories", refined_partition_suite, blocking=True),
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

    @dg.asset(**common)
    def sft_dataset(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        refined_trajectories: pd.DataFrame,
        verified_envs: pd.DataFrame,
    ) -> dg.Output:
        """One SFT row per kept trajectory (OpenAI messages with tool_calls + tools), exported as OpenAI
        JSONL, ShareGPT/LLaMA-Factory and HF-datasets Parquet under `$ENVFACTORY_HOME/exports`."""
        rows, errors, metrics = build_sft_rows(records(refined_trajectories), records(verified_envs))
        for error in errors:
            context.log.warning(f"{error}")
        domain = context.partition_key

        def write(directory: Path) -> None:
            write_openai_jsonl(rows, directory / "openai.jsonl")
            write_sharegpt(rows, directory / "sharegpt")
            write_hf_parquet(rows, directory / "hf.parquet")

        target = replace_directory(export_directory(settings.home, "sft", domain), write)
        return dg.Output(
            pd.DataFrame(rows),
            metadata=as_metadata({**metrics, "errors": len(errors), "export_dir": str(target)}),
        )

    @dg.asset(**common, check_specs=check_specs("rl_tasks", rl_tasks_suite, blocking=True))
    def rl_tasks(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        refined_trajectories: pd.DataFrame,
        verified_envs: pd.DataFrame,
    ):
        """RL tasks with initial state, gold calls (masked arguments), gold final states and reward
        spec; verl Parquet under `$ENVFACTORY_HOME/exports`. Each task's gold replay is scored."""
        envs = records(verified_envs)
        rows, errors, metrics = build_rl_tasks(records(refined_trajectories), envs)
        index = environments_by_id(envs)
        for row in rows:
            # independent of the check inside build_rl_tasks: the STORED row, states validated afresh
            row["gold_reward"] = replay_rl_task(rl_task_from_row(row), index).total
        for error in errors:
            context.log.warning(f"{error}")
        target = replace_directory(
            export_directory(settings.home, "rl", context.partition_key),
            lambda directory: write_verl_parquet(rows, directory / "verl.parquet"),
        )
        frame = pd.DataFrame(rows)
        yield dg.Output(
            frame, metadata=as_metadata({**metrics, "errors": len(errors), "export_dir": str(target)})
        )
        yield from check_results("rl_tasks", rl_tasks_suite, frame, context.partition_key)

    return [refined_trajectories, sft_dataset, rl_tasks]
