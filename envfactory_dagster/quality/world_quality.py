"""`world_quality`: is the world of a partition realistic? Figures a user reads at a glance.

`world_quality_row(registry_rows, mutation=True)` measures the `verified_envs` rows of one
partition (their specs, seed states and module sources) and returns one row of figures. It
measures; it filters nothing. Detectors are read from field names and values, independently of
the meanings the seed generator stored (a field named like a currency is audited whether or not
the generator understood it):

- `currency_valid_share`, `country_valid_share`: values of fields named like a currency / country
  that are ISO 4217 codes / ISO 3166-1 codes or names (pycountry);
- `inverted_pairs`: rows whose start-like field is after its end-like field (`start`/`end`,
  `check_in`/`check_out`, `created`/`updated`, ...);
- `lorem_only_share`: free-text values (descriptions, notes, messages, ...) whose every word is a
  Faker lorem word;
- `totals_consistent_share`: rows whose total equals subtotal + additions - deductions, where the
  schema names a total and a subtotal;
- `person_name_on_non_person_share`: name/title values of records that are not people which are
  a first name plus a last name from Faker's person lists;
- `write_tools_with_rules_share`: write tools whose module code holds a business-rule block;
  `write_tools_beyond_crud_share`: write tools whose code writes a second collection or refuses
  for a reason other than a missing row (this one also counts transition guards);
- `rules_with_a_test_share`: business rules stated in the specs that have a generated rule test;
- `mutation_kill_rate`: share of the rule mutants run that verification rejects
  (envgen/rule_mutation.py): `mutants_run` of the `rule_mutants` generated (every drop, one flip
  in `FLIP_MUTANTS_EVERY`);
- `same_id_same_record_share`: for each id present in two environments of one service (same
  `world_id`, else the same first resource), whether it names the same record;
  `shared_ids_across_services`: id strings present in two services of the partition.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from functools import cache
from itertools import combinations
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec
from envfactory_dagster.envgen.field_semantics import annotate_spec, record_kind
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.envgen.test_generation import generate_tool_tests
from envfactory_dagster.envgen.world_codes import is_country_code, is_country_name, is_currency_code
from envfactory_dagster.envgen.world_invariants import ordered_pairs, parse_moment, total_parts
from envfactory_dagster.lineage import canonical_json

FREE_TEXT_NAMES = frozenset(
    {"description", "notes", "note", "body", "content", "message", "text", "comment", "comments", "summary",
     "bio", "memo", "reason", "details", "instructions", "abstract", "feedback", "remarks", "explanation"}
)  # fmt: skip
NAME_FIELDS = frozenset({"name", "title", "display_name", "full_name"})
# every drop mutant runs; flips (killed by any valid call of their tool) one in four
FLIP_MUTANTS_EVERY = 4
WRITE_REFUSALS_BEYOND_EXISTENCE = frozenset(
    {"conflict", "invalid_state", "invalid_value", "insufficient_stock"}
)


@cache
def _lorem_words() -> frozenset[str]:
    from faker.providers.lorem.en_US import Provider as English
    from faker.providers.lorem.la import Provider as Latin

    return frozenset(w.lower() for w in (*English.word_list, *Latin.word_list))


@cache
def _person_names() -> tuple[frozenset[str], frozenset[str]]:
    from faker.providers.person.en_US import Provider as Person

    return frozenset(Person.first_names), frozenset(Person.last_names)


def _share(good: int, total: int) -> float | None:
    return round(good / total, 4) if total else None


def _is_lorem_only(text: str) -> bool:
    tokens = re.findall(r"[A-Za-z]+", text)
    return bool(tokens) and all(t.lower() in _lorem_words() for t in tokens)


def _is_person_name(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = value.split()
    firsts, lasts = _person_names()
    return len(parts) == 2 and parts[0] in firsts and parts[1] in lasts


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, name: str, good: bool) -> None:
        self.counts[name][0] += bool(good)
        self.counts[name][1] += 1

    def share(self, name: str) -> float | None:
        good, total = self.counts.get(name, [0, 0])
        return _share(good, total)

    def total(self, name: str) -> int:
        return self.counts.get(name, [0, 0])[1]


def _audit_rows(entity: EntitySpec, rows: list[dict[str, Any]], tally: _Tally) -> None:
    person = record_kind(entity) == "person"
    for f in entity.fields:
        ws = set(words(f.name))
        values = [r.get(f.name) for r in rows if isinstance(r.get(f.name), str) and r.get(f.name)]
        if "currency" in ws and not ws & {"amount", "rate", "symbol", "name"} and f.name != entity.key_field:
            for v in values:
                tally.add("currency", is_currency_code(v))
        if "country" in ws and f.name != entity.key_field and not f.ref_entity:
            for v in values:
                tally.add("country", is_country_code(v) or is_country_name(v))
        if ws & FREE_TEXT_NAMES and not f.enum and not f.format and f.type == "string":
            for v in values:
                tally.add("lorem", _is_lorem_only(v))
        if f.name in NAME_FIELDS and not person:
            for v in values:
                tally.add("person_name", _is_person_name(v))
    for first, second in ordered_pairs(entity):
        for r in rows:
            a, b = r.get(first), r.get(second)
            if a is None or b is None:
                continue
            if isinstance(a, int | float) and isinstance(b, int | float) and not parse_moment(a):
                tally.add("ordered", a <= b)
            elif parse_moment(a) and parse_moment(b):
                tally.add("ordered", parse_moment(a) <= parse_moment(b))  # type: ignore[operator]
    parts = total_parts(entity)
    if parts is not None:
        total, added, subtracted = parts
        for r in rows:
            values = [r.get(n) for n in (total, *added, *subtracted)]
            if all(isinstance(v, int | float) for v in values):
                expected = sum(r[n] for n in added) - sum(r[n] for n in subtracted)
                tally.add("totals", abs(r[total] - expected) <= 0.011)


def _write_tool_code(source: str, spec: EnvSpec) -> dict[str, tuple[bool, bool]]:
    """Write tool -> (has a rule block, writes another collection or refuses beyond existence)."""
    writes = {t.name: t for t in spec.tools if t.kind == "write"}
    own = {
        t.name: next((e.collection for e in spec.entities if e.name == t.entity), "") for t in writes.values()
    }
    lines = source.splitlines()
    out: dict[str, tuple[bool, bool]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef) or node.name not in writes:
            continue
        text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        has_rule = "# rule " in text
        beyond = False
        for call in ast.walk(node):
            if not isinstance(call, ast.Call) or not call.args or not isinstance(call.args[0], ast.Constant):
                continue
            name = getattr(call.func, "attr", getattr(call.func, "id", ""))
            target = call.args[0].value
            if name in ("put", "table") and target != own[node.name] and _writes(call, node):
                beyond = True
            if name == "ToolError" and target in WRITE_REFUSALS_BEYOND_EXISTENCE:
                beyond = True
        out[node.name] = (has_rule, beyond)
    return out


def _writes(call: ast.Call, function: ast.FunctionDef) -> bool:
    """A `put` into a collection, or a `del self.table(...)[...]` of it."""
    if getattr(call.func, "attr", "") == "put":
        return True
    for node in ast.walk(function):
        if isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and target.value is call:
                    return True
    return False


def _service_of(row: dict[str, Any]) -> str:
    world = row.get("world_id")
    if isinstance(world, str) and world:
        return world
    given = row.get("resource_ids")
    resources = list(given) if given is not None else []  # a list, or an array read from Parquet
    return str(resources[0]) if resources else str(row.get("env_id"))


def _identity(registry_rows: list[dict[str, Any]], states: list[dict[str, Any]]) -> dict[str, Any]:
    """Same id, same record within a service; id strings shared across services."""
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row, state in zip(registry_rows, states, strict=True):
        tables = {k: v for k, v in state.items() if k != "counters"}  # counters are keyed by collection
        by_service[_service_of(row)].append(tables)
    same = total = 0
    ids_by_service: dict[str, set[str]] = {}
    for service, service_states in by_service.items():
        ids_by_service[service] = {
            key for s in service_states for v in s.values() if isinstance(v, dict) for key in v
        }
        for a, b in combinations(service_states, 2):
            for coll in set(a) & set(b):
                if not isinstance(a[coll], dict) or not isinstance(b[coll], dict):
                    continue
                for key in set(a[coll]) & set(b[coll]):
                    total += 1
                    same += canonical_json(a[coll][key]) == canonical_json(b[coll][key])
    shared = set()
    for (_, x), (_, y) in combinations(ids_by_service.items(), 2):
        shared |= x & y
    return {
        "same_id_same_record_share": _share(same, total),
        "same_id_pairs": total,
        "shared_ids_across_services": len(shared),
        "services": len(by_service),
    }


def world_quality_row(
    registry_rows: list[dict[str, Any]], domain: str, *, mutation: bool = True
) -> dict[str, Any]:
    """The figures of one partition's registry (see the module docstring)."""
    tally = _Tally()
    specs = [annotate_spec(EnvSpec.model_validate_json(r["spec_json"])) for r in registry_rows]
    states = [json.loads(r["seed_state_json"]) for r in registry_rows]
    write_tools = rule_tools = beyond_tools = rules = tested_rules = 0
    for row, spec, state in zip(registry_rows, specs, states, strict=True):
        tested = {(t.tool, t.rule) for t in generate_tool_tests(spec, state) if t.rule}
        for tool in spec.tools:
            rules += len(tool.rules)
            tested_rules += sum((tool.name, r.id) in tested for r in tool.rules)
        for entity in spec.entities:
            table = state.get(entity.collection) or {}
            _audit_rows(entity, list(table.values()) if isinstance(table, dict) else [], tally)
        for has_rule, beyond in _write_tool_code(row["source"], spec).values():
            write_tools += 1
            rule_tools += has_rule
            beyond_tools += beyond or has_rule
    figures: dict[str, Any] = {
        "domain": domain,
        "environments": len(registry_rows),
        "currency_values": tally.total("currency"),
        "currency_valid_share": tally.share("currency"),
        "country_values": tally.total("country"),
        "country_valid_share": tally.share("country"),
        "ordered_pairs_checked": tally.total("ordered"),
        "inverted_pairs": tally.total("ordered") - tally.counts["ordered"][0],
        "free_text_values": tally.total("lorem"),
        "lorem_only_share": tally.share("lorem"),
        "totals_checked": tally.total("totals"),
        "totals_consistent_share": tally.share("totals"),
        "non_person_names": tally.total("person_name"),
        "person_name_on_non_person_share": tally.share("person_name"),
        "write_tools": write_tools,
        "write_tools_with_rules_share": _share(rule_tools, write_tools),
        "write_tools_beyond_crud_share": _share(beyond_tools, write_tools),
        "rules": rules,
        "rules_with_a_test_share": _share(tested_rules, rules),
        **_identity(registry_rows, states),
        "rule_mutants": None,
        "mutants_run": None,
        "mutation_kill_rate": None,
    }
    if mutation and registry_rows:
        from envfactory_dagster.envgen.rule_mutation import kill_rate, mutation_check

        outcomes = mutation_check(
            [
                (spec, row["source"], state)
                for row, spec, state in zip(registry_rows, specs, states, strict=True)
            ],
            flip_every=FLIP_MUTANTS_EVERY,
        )
        figures["rule_mutants"] = len(outcomes)
        figures["mutants_run"] = sum(o.killed is not None for o in outcomes)
        figures["mutation_kill_rate"] = kill_rate(outcomes)
        figures["surviving_mutants"] = json.dumps(
            [f"{o.rule} {o.operator}" for o in outcomes if o.killed is False]
        )
    return figures


def format_report(rows: list[dict[str, Any]]) -> str:
    """The figures of each partition as a readable table (one line per figure)."""
    if not rows:
        return "no world_quality figures (materialize verified_envs first)"
    lineage = ("domain", "surviving_mutants", "id", "dagster_run_id", "code_version", "created_at")
    keys = [k for k in rows[0] if k not in lineage]
    width = max(len(k) for k in keys)
    header = f"{'figure':<{width}}  " + "  ".join(f"{r['domain']:>10}" for r in rows)
    lines = [header, "-" * len(header)]
    for key in keys:
        cells = []
        for r in rows:
            value = r.get(key)
            cells.append(f"{'-' if value is None else value:>10}")
        lines.append(f"{key:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
