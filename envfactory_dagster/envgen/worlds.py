"""One world per service: the environments cut from one API share one state.

A proposal is one workflow area of a service (a tag of its API document), so one document gives
several environments. They must not hold separate data: the world is the service's, and its
environments read and write one store. Here:

- `group_worlds` joins proposals into worlds: proposals that cite a common resource belong to one
  world (a proposal that merges operations of several documents joins their worlds);
- the world's entities are inferred ONCE from all its operations (`world_proposal`), and each
  environment's spec is that world spec with its own tools (`environment_spec`), so every
  environment of a world has the same State model; the seed state is generated once per world
  (`world_seed_state`) and every environment of the world gets it;
- ids carry the service's prefix (`shopify_ord_0001`): two services of a partition never share an
  id string by accident (`service_slugs` makes the prefix unique within the partition); a key whose
  form the document states (UUID, integer, pattern) takes it instead, numbered from digits the
  service and entity decide (`envgen.key_forms`).

Two services share a record only where a link is declared: nothing here invents one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec
from envfactory_dagster.envgen.key_forms import with_distinct_key_forms
from envfactory_dagster.envgen.seed_data import generate_state
from envfactory_dagster.envgen.spec_inference import id_prefix_of
from envfactory_dagster.ingest.normalized_spec import NormalizedSpec
from envfactory_dagster.lineage import content_id, derived_seed

# Words of a document title that name the kind of API rather than the service.
_API_WORDS = frozenset(
    (
        "api",
        "apis",
        "rest",
        "web",
        "platform",
        "admin",
        "open",
        "sell",
        "trading",
        "online",
        "cloud",
        "endpoints",
        "documentation",
        "public",
        "partner",
        "services",
        "service",
        "the",
    )
)


@dataclass
class World:
    """The proposals of one service and the resources they cite."""

    world_id: str
    service: str  # display name ("Shopify")
    slug: str  # id prefix of the service ("shopify"), unique within the partition
    resource_ids: list[str]
    proposals: list[dict[str, Any]]


def service_name(spec: NormalizedSpec) -> str:
    """The service a document describes, as a person names it: the title's first part without the
    words that name the kind of API ("Shopify Admin — orders" -> "Shopify", "Slack Web API" ->
    "Slack", "Google Calendar" -> "Google Calendar")."""
    title = re.split(r"\s+[—–-]\s+|:\s", spec.title or "", maxsplit=1)[0].strip()
    kept = [w for w in title.split() if w.lower() not in _API_WORDS and not re.fullmatch(r"v\d+(\.\d+)*", w)]
    return " ".join(kept[:3]) or title or "Service"


def _slug(service: str) -> str:
    first = re.sub(r"[^a-z0-9]", "", (service.split() or ["service"])[0].lower())
    return (first or "service")[:12] if not first[:1].isdigit() else f"s{first[:11]}"


def group_worlds(
    proposals: Sequence[Mapping[str, Any]], specs_by_resource: Mapping[str, NormalizedSpec]
) -> list[World]:
    """Worlds of one partition: proposals joined through shared resources, in first-seen order."""
    parent: dict[str, str] = {}

    def root(rid: str) -> str:
        while parent.setdefault(rid, rid) != rid:
            parent[rid] = parent[parent[rid]]
            rid = parent[rid]
        return rid

    for proposal in proposals:
        rids = list(proposal["resource_ids"])
        for other in rids[1:]:
            parent[root(other)] = root(rids[0])
    members: dict[str, list[dict[str, Any]]] = {}
    for proposal in proposals:
        members.setdefault(root(proposal["resource_ids"][0]), []).append(dict(proposal))
    worlds: list[World] = []
    taken: dict[str, int] = {}
    for group in members.values():
        resource_ids = sorted({r for p in group for r in p["resource_ids"]})
        spec = specs_by_resource.get(group[0]["resource_ids"][0])
        service = service_name(spec) if spec is not None else str(group[0].get("class_name") or "Service")
        slug = _slug(service)
        taken[slug] = taken.get(slug, 0) + 1
        if taken[slug] > 1:  # two documents titled alike: their ids still differ
            slug = f"{slug}{taken[slug]}"
        worlds.append(
            World(
                world_id=content_id(resource_ids, "wld_"),
                service=service,
                slug=slug,
                resource_ids=resource_ids,
                proposals=group,
            )
        )
    return worlds


def world_proposal(world: World) -> dict[str, Any]:
    """A proposal covering every operation of the world, for inferring its entities once."""
    operations = list(dict.fromkeys(op for p in world.proposals for op in p["operation_ids"]))
    first = world.proposals[0]
    return {
        "id": world.world_id,
        "domain": first.get("domain"),
        "class_name": first["class_name"],
        "title": world.service,
        "purpose": first.get("purpose") or "",
        "operation_ids": operations,
        "resource_ids": world.resource_ids,
    }


def environment_spec(world_spec: EnvSpec, world: World, proposal: Mapping[str, Any]) -> EnvSpec:
    """One environment of the world: the world's entities (so its State model is the world's) with
    the tools of the proposal's own operations, ids prefixed by the service."""
    own = set(proposal["operation_ids"])
    tools = [t for t in world_spec.tools if t.source_operation_id in own]
    entities = with_distinct_key_forms(
        world_spec.entities, world.slug, lambda e: _default_prefix(e, world.slug)
    )
    description = re.sub(r"\s+", " ", str(proposal.get("purpose") or proposal.get("title") or "")).strip()
    if tools and all(t.kind == "read" for t in tools):
        description += " Read-only: this environment's operations only look data up."
    return world_spec.model_copy(
        update={
            "class_name": str(proposal["class_name"]),
            "title": str(proposal.get("title") or proposal["class_name"])[:300],
            "description": description,
            "entities": entities,
            "tools": tools,
            "resource_ids": list(proposal["resource_ids"]),
            "proposal_id": proposal.get("id"),
            "world_id": world.world_id,
            "service": world.service,
        }
    )


def _default_prefix(entity: EntitySpec, slug: str) -> str:
    """The prefix of keys of no stated form: the service's before the entity's (`shopify_ord_`)."""
    key = next((f for f in entity.fields if f.name == entity.key_field), None)
    own_prefix = id_prefix_of(entity.name) if key is not None and key.pattern else entity.id_prefix
    return f"{slug}_{own_prefix}"


def world_spec_of(specs: Sequence[EnvSpec]) -> EnvSpec:
    """The world's spec from its environments' specs: their shared entities and every tool (the
    tools say which fields have a lifecycle, which the seed data cycles through)."""
    first = specs[0]
    tools = {t.name: t for spec in specs for t in spec.tools}
    return first.model_copy(update={"tools": list(tools.values()), "class_name": first.class_name})


def world_seed_state(specs: Sequence[EnvSpec], base_seed: int) -> dict[str, Any]:
    """The seed state of a world: generated once, the same for each of its environments."""
    world = world_spec_of(specs)
    return generate_state(world, derived_seed(base_seed, world.world_id or world.proposal_id))


def world_seed_states(specs: Sequence[EnvSpec], base_seed: int) -> dict[str, dict[str, Any]]:
    """world_id -> seed state, for specs of any number of worlds (a spec without a world is its own)."""
    groups: dict[str, list[EnvSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.world_id or str(spec.proposal_id), []).append(spec)
    return {key: world_seed_state(group, base_seed) for key, group in groups.items()}
