"""Trainer-facing quality of the export files of a run (issue 16's acceptance figures).

    .venv/bin/python benchmarks/export_quality.py [EXPORTS_DIR]   # default $ENVFACTORY_HOME/exports

Reads every `sft/domain=*` and `rl/domain=*` folder as the trainers would and prints one JSON
object: ShareGPT records LLaMA-Factory keeps, OpenAI lines without format problems, assistant
tool-call messages passing an id not yet shown, the most repeated turn answer, RL gold calls per
task, tasks with multi-turn history, masked argument slots, distinct verl schemas, and whether
`datasets.load_dataset` reads all SFT / all RL files in one call each (when `datasets` is installed).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from envfactory_dagster.export.export_audit import (  # noqa: E402
    most_shared_answer,
    openai_problems,
    sharegpt_problems,
    unseen_ids,
)
from envfactory_dagster.settings import envfactory_home  # noqa: E402


def sft_figures(folders: list[Path]) -> dict[str, object]:
    conversations, bad_openai, messages_with_calls, unseen_messages = [], 0, 0, 0
    sharegpt_total = sharegpt_bad = 0
    for folder in folders:
        for line in (folder / "openai.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            conversations.append(record["messages"])
            bad_openai += bool(openai_problems(record))
            messages_with_calls += sum(1 for m in record["messages"] if m.get("tool_calls"))
            unseen_messages += len({u["message"] for u in unseen_ids(record["messages"], record["tools"])})
        info = json.loads((folder / "sharegpt" / "dataset_info.json").read_text(encoding="utf-8"))
        for entry in info.values():
            columns = entry.get("columns", {})
            for record in json.loads((folder / "sharegpt" / entry["file_name"]).read_text(encoding="utf-8")):
                sharegpt_total += 1
                sharegpt_bad += bool(sharegpt_problems(record, columns))
    share, text, turns = most_shared_answer(conversations)
    return {
        "sft_rows": len(conversations),
        "sharegpt_valid_share": round(1 - sharegpt_bad / max(sharegpt_total, 1), 4),
        "openai_valid_share": round(1 - bad_openai / max(len(conversations), 1), 4),
        "tool_call_messages": messages_with_calls,
        "tool_call_messages_with_unseen_id": unseen_messages,
        "turn_answers": turns,
        "top_answer_share": round(share, 4),
        "top_answer": text[:80],
    }


def rl_figures(files: list[Path]) -> dict[str, object]:
    import pyarrow.parquet as pq

    schemas = {str(pq.read_schema(f).remove_metadata()) for f in files}
    gold_counts, with_history, masked = [], 0, 0
    for path in files:
        for row in pq.read_table(path).to_pylist():
            truth = row["reward_model"]["ground_truth"]
            truth = json.loads(truth) if isinstance(truth, str) else truth
            gold_counts.append(len(truth))
            masked += sum(len(g.get("masked_arguments") or []) for g in truth)
            roles = [m["role"] for m in row["prompt"]]
            with_history += roles.count("user") > 1 or "assistant" in roles
    return {
        "rl_tasks": len(gold_counts),
        "median_gold_calls": statistics.median(gold_counts) if gold_counts else None,
        "tasks_with_history_share": round(with_history / max(len(gold_counts), 1), 4),
        "masked_argument_slots": masked,
        "verl_files": len(files),
        "distinct_verl_schemas": len(schemas),
    }


def load_figures(sft_files: list[Path], rl_files: list[Path]) -> dict[str, object]:
    if importlib.util.find_spec("datasets") is None:
        return {"datasets": "not installed"}
    import datasets

    figures: dict[str, object] = {}
    for kind, files in (("sft", sft_files), ("rl", rl_files)):
        try:
            loaded = datasets.load_dataset("parquet", data_files=[str(f) for f in files])["train"]
            figures[f"{kind}_load_dataset_rows"] = len(loaded)
        except Exception as exc:  # the figure is the failure itself, reported as data
            figures[f"{kind}_load_dataset_rows"] = f"FAILED: {type(exc).__name__}"
    return figures


def main() -> int:
    exports = Path(sys.argv[1] if len(sys.argv) > 1 else Path(envfactory_home()) / "exports")
    sft_folders = sorted((exports / "sft").glob("domain=*"))
    rl_files = sorted((exports / "rl").glob("domain=*/*.parquet"))
    sft_files = sorted(f for folder in sft_folders for f in folder.glob("*.parquet"))
    figures = {"exports": str(exports), **sft_figures(sft_folders), **rl_figures(rl_files)}
    figures.update(load_figures(sft_files, rl_files))
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
