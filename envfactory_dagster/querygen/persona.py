"""One person, one goal: the user behind a trajectory (template backend, an offline heuristic).

The persona is composed from what the chain touches, not written freely:
- the role comes from the kinds of records the chain works on (orders and listings -> "an online
  seller", invoices and bills -> "a bookkeeper", sprints and issues -> "an engineering lead"), by
  a vocabulary of entity words; a service whose records name no known kind gets "a regular user";
- the name is drawn (seeded) from Faker;
- the goal names what the user asks for, turn by turn ("cancel an order and refund a payment");
- the context is the first turn's opening sentence that motivates the session ("I'm catching up
  on my orders in Shopify today.").

With the LLM backend the persona prompt writes these instead and the same checks apply.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from faker import Faker

from envfactory_dagster.envgen.env_spec import ToolSpec
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.querygen.surface import (
    a_or_an,
    join_words,
    plural_words,
    transition_verb,
    verb_with_object,
)

# entity word -> the role of a person who works on such records (first match in chain order wins)
_ROLES: dict[str, str] = {
    **dict.fromkeys(
        ("order", "product", "listing", "inventory", "fulfillment", "receipt", "shop"), "an online seller"
    ),
    **dict.fromkeys(
        ("offer", "shipment", "parcel", "label", "pickup", "manifest", "carrier"), "a shipping coordinator"
    ),
    **dict.fromkeys(
        ("invoice", "bill", "vendor", "estimate", "expense", "journal", "ledger"), "a bookkeeper"
    ),
    **dict.fromkeys(
        ("payment", "refund", "dispute", "charge", "subscription", "payout"), "a payments manager"
    ),
    **dict.fromkeys(("transfer", "recipient", "balance", "quote"), "a finance assistant"),
    **dict.fromkeys(("position", "watchlist", "asset", "portfolio", "trade"), "an investor"),
    **dict.fromkeys(
        ("issue", "sprint", "pull", "repository", "release", "commit", "branch"), "an engineering lead"
    ),
    **dict.fromkeys(("event", "calendar", "attendee"), "a busy professional"),
    **dict.fromkeys(("channel", "message", "reminder", "usergroup", "conversation"), "a team lead"),
    **dict.fromkeys(
        ("course", "assignment", "submission", "module", "quiz", "enrollment", "discussion"), "an instructor"
    ),
    **dict.fromkeys(("venue", "paper", "note", "decision", "invitation"), "a program chair"),
    **dict.fromkeys(("loan", "patron", "hold", "fine", "fee"), "a librarian"),
    **dict.fromkeys(("item", "collection", "tag", "citation", "library"), "a researcher"),
    **dict.fromkeys(
        ("flight", "itinerary", "traveler", "passenger", "ancillary", "seat", "journey"), "a travel agent"
    ),
    **dict.fromkeys(("hotel", "room", "rate", "property", "availability"), "a hotel manager"),
    **dict.fromkeys(("rental", "vehicle", "car"), "a car-rental agent"),
    **dict.fromkeys(("ticket", "fare", "railcard", "train"), "a rail passenger"),
    **dict.fromkeys(
        ("class", "membership", "instructor", "client", "visit", "appointment"), "a studio manager"
    ),
    **dict.fromkeys(("restaurant", "reservation", "table", "waitlist", "review"), "a restaurant host"),
    **dict.fromkeys(("playlist", "track", "album", "artist", "episode", "podcast"), "a music fan"),
    **dict.fromkeys(("activity", "route", "segment", "gear", "club", "athlete", "workout"), "a runner"),
    **dict.fromkeys(("bucket", "zone", "dns", "firewall"), "an ops engineer"),
    **dict.fromkeys(("incident", "escalation", "oncall"), "an on-call engineer"),
    **dict.fromkeys(("bitlink", "campaign", "sender", "unsubscribe"), "a marketer"),
}
_CONTEXTS = (
    "I'm catching up on my {p} in {s} today.",
    "I've got some {s} admin to get through.",
    "Working through my {p} this morning.",
    "Quick {s} task for you.",
    "It's about my {p} on {s}.",
    "Hi! I'm sorting out a few {p}.",
    "Hey, I need some help with {s}.",
    "As {r}, I'm tidying up my {p}.",
    "Got a few things to fix in {s}.",
    "Morning! Doing some housekeeping on my {p}.",
    "So, I'm looking at my {p} right now.",
    "Before the end of the day I want to deal with some {p}.",
    "Today's job: my {p} in {s}.",
    "This is for my {s} account.",
    "I'm behind on {p} and want to catch up.",
    "Our {p} need some attention.",
    "Something came up with one of my {p}.",
    "A customer asked me about {p}, so here goes.",
    "Let's get my {s} stuff in order.",
    "I'm reviewing {p} before a meeting.",
    "End of week cleanup in {s}.",
    "Back again with more {s} work.",
    "I'm doing a pass over my {p}.",
    "My manager wants the {p} sorted today.",
    "New week, new {p} to handle.",
    "Help me with {s}, please.",
    "Some {p} changed and I need to keep up.",
    "I'm double-checking a few {p}.",
    "There's a backlog of {p} in {s}.",
    "I'm in {s} and need a hand.",
    "Need to get a few {p} squared away.",
    "Right, {s} time.",
    "I'm planning ahead for my {p}.",
    "Following up on some {p}.",
    "",
    "",
    "",
    "",
    "",
    "",
)


@dataclass(frozen=True)
class Persona:
    name: str
    role: str
    service: str
    goal: str  # what the user wants done, in their words ("cancel an order and refund a payment")
    context: str  # the opening sentence of the first turn ("" = the request stands alone)

    def text(self) -> str:
        return f"{self.name}, {self.role} using {self.service}, wants to {self.goal}."


def role_for(nouns: list[str]) -> str:
    """The role of someone working on a service's records: the role most of its entity nouns point
    to (ties: the first seen); "a regular user" when none does."""
    votes = Counter(_ROLES[w] for noun in nouns for w in noun.split()[-1:] if w in _ROLES)
    return votes.most_common(1)[0][0] if votes else "a regular user"


def intent(tool: ToolSpec, noun: str) -> str:
    """What the user wants from one requested call, as a goal fragment ("cancel an order")."""
    thing = a_or_an(noun)
    if tool.action == "transition" and tool.transition is not None:
        verb = transition_verb(tool.name, tool.transition.to_value) or "update"
        return verb_with_object(verb, thing)
    return {
        "create": f"add {thing}",
        "update": f"update {thing}",
        "delete": f"remove {thing}",
        "get": f"check {thing}",
        "list": f"review their {plural_words(noun)}",
        "search": f"find the right {noun}",
    }.get(tool.action, " ".join(words(tool.name)))


def compose_persona(
    rng: random.Random,
    faker: Faker,
    *,
    service: str,
    targets: list[tuple[ToolSpec, str]],
    entity_nouns: list[str],
) -> Persona:
    """The persona of a trajectory whose requested calls are `targets` ((tool, entity noun) in
    order), on a service whose records are `entity_nouns`."""
    nouns = [noun for _, noun in targets]
    role = role_for(entity_nouns)
    goals = list(dict.fromkeys(intent(tool, noun) for tool, noun in targets))
    # a simulated request's collection ("unlock topic request") is not what the user works on
    main = next((n for n in nouns if not n.endswith("request")), nouns[0] if nouns else "record")
    context = rng.choice(_CONTEXTS).format(p=plural_words(main), s=service, r=role)
    return Persona(
        name=faker.name(),
        role=role,
        service=service,
        goal=join_words(goals) or "look something up",
        context=context,
    )
