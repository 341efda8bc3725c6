"""The service's own words: noun phrases from its descriptions, titles and enum values.

Free text and titles of seed rows are built from these (a heuristic, named as one: runs of
content words inside a clause of the document's descriptions), never from lorem words, so a
Stripe note talks about payments and disputes and a Canvas course title about assignments.
"""

from __future__ import annotations

import random
import re
from functools import cached_property

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec
from envfactory_dagster.envgen.naming import word_set, words

# words that carry no subject matter in API descriptions
STOPWORDS = word_set(
    "a an the and or but nor of to in on at by for from with without into onto over under about "
    "as is are was were be been being it its this that these those there their them they we you "
    "your our his her he she i me my not no yes all any each every some many more most less "
    "least other others such only own same so than too very can will just should would could "
    "may might must shall do does did done has have had having if then else when where which "
    "who whom whose what why how also may id ids identifier identifiers unique key keys field "
    "fields object objects value values string strings number numbers integer boolean true "
    "false null list lists array arrays returns return returned get gets given give gives set "
    "sets new one two three first last optionally optional whether either used use uses using "
    "per via etc e g ie eg like up out off one's able based current currently already still yet "
    "now then least within between after before while during lists creates updates deletes "
    "registers records shows saves sends stops moves marks fetches retrieves provides contains "
    "describes includes holds tracks where's whose here again once since until upon across "
    "along among around behind below beneath beside beyond down near past through throughout "
    "toward towards underneath via amount amounts code codes type types kind name names text "
    "format time date dates times smallest unit units"
)
# verbs of API prose ("the variant belongs to", "the link expires"): not subject matter
VERBS = word_set(
    "belongs expires changes contains includes requires allows shows means applies takes makes needs "
    "becomes counts stays starts ends goes comes keeps lets helps tells asks pays books sells buys "
    "runs works looks finds reads writes adds removes cancels closes opens sets gets puts holds"
)
KEEP_ED = word_set("need speed feed seed bed shed")
# the words after which a description's first word is its verb ("Rename a watchlist")
DETERMINERS = word_set("a an the all one every each your its their this that these those some any my our")
_CLAUSE = re.compile(r"[.;:,()!?\n\"]|\s[-–—]\s")
MIN_WORD = 3


def _phrases(text: str, actions: frozenset[str] = frozenset()) -> list[str]:
    """Runs of 1..3 content words inside one clause of `text`; `actions` are verbs too."""
    found: list[str] = []
    for clause in _CLAUSE.split(text):
        run: list[str] = []
        for token in re.findall(r"[A-Za-z][A-Za-z'-]*", clause):
            word = token.lower().strip("'-")
            verb = word in VERBS or word in actions or (word.endswith("ed") and word not in KEEP_ED)
            if word in STOPWORDS or verb or len(word) < MIN_WORD or word.endswith("'s"):
                if run:
                    found.append(" ".join(run[-3:]))
                run = []
                continue
            run.append(word)
        if run:
            found.append(" ".join(run[-3:]))
    return found


class ServiceVocabulary:
    """Noun phrases of one environment spec, per entity and for the whole service."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        # the verbs the tools are named by ("submit" of submit_paper, "restore" of restore_item)
        # and the verbs their descriptions open with ("Rename a watchlist" of update_watchlist):
        # as titles they read as filler ("Deadline for Submit", a watchlist titled "Rename")
        self.actions = frozenset(ws[0] for t in spec.tools if (ws := words(t.name))) | frozenset(
            ws[0] for t in spec.tools if len(ws := words(t.description)) > 1 and ws[1] in DETERMINERS
        )

    @cached_property
    def service_phrases(self) -> list[str]:
        texts = [self.spec.title, self.spec.description]
        texts += [t.description for t in self.spec.tools]
        texts += [e.description for e in self.spec.entities]
        return self._unique(p for t in texts for p in _phrases(t, self.actions))

    def entity_phrases(self, entity: EntitySpec) -> list[str]:
        return self._entity_phrases[entity.name]

    @cached_property
    def _entity_phrases(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for entity in self.spec.entities:
            texts = [entity.description] + [f.description for f in entity.fields]
            texts += [t.description for t in self.spec.tools if t.entity == entity.name]
            enum_words = [  # as words, never as the identifier (`PUBLISHED`, `in_progress`)
                " ".join(words(v)) for f in entity.fields for v in f.enum or [] if isinstance(v, str)
            ]
            phrases = [p for t in texts for p in _phrases(t, self.actions)]
            phrases += [p for p in enum_words if len(p) >= MIN_WORD and p.lower() not in STOPWORDS]
            out[entity.name] = self._unique(phrases) or self.service_phrases
        return out

    @staticmethod
    def _unique(phrases: object) -> list[str]:
        return list(dict.fromkeys(p for p in phrases if p))  # type: ignore[attr-defined]

    def phrase(self, rng: random.Random, entity: EntitySpec | None = None) -> str:
        """One noun phrase, from the entity's own descriptions when it has some."""
        pool = self.entity_phrases(entity) if entity is not None else self.service_phrases
        pool = pool or self.service_phrases or [w for w in words(self.spec.title) if len(w) >= MIN_WORD]
        return rng.choice(pool) if pool else (entity.name.lower() if entity else "record")

    def title(self, rng: random.Random, entity: EntitySpec) -> str:
        """A title for a record that is not a person, organization, product or place."""
        first = self.phrase(rng, entity)
        shape = rng.randrange(4)
        second = self.phrase(rng, entity if shape == 3 else None) if shape >= 2 else ""
        own_name = set(words(entity.name))
        if shape >= 2 and (second == first or set(second.split()) <= own_name):
            shape = 1  # "Tag for Tag", "Collection for Collection" name nothing
        if shape == 0 and set(first.split()) <= own_name:
            shape = 1  # a collection titled "Collection"
        if shape == 0:
            text = first
        elif shape == 1:
            text = f"{first} {rng.choice(['review', 'plan', 'update', 'overview', 'checklist', 'report'])}"
        elif shape == 2:
            text = f"{first} for {second}"
        else:
            text = f"{first} and {second}"
        return _title_case(text)

    def free_text(self, rng: random.Random, entity: EntitySpec, field_words: set[str], person: str) -> str:
        """A sentence of the service's own vocabulary in the voice the field suggests."""
        a, b = self.phrase(rng, entity), self.phrase(rng)
        for _ in range(3):  # "the reply for the reply" says nothing: draw the second phrase again
            if b != a:
                break
            b = self.phrase(rng)
        if b == a:
            b = self.spec.title
        if field_words & {"reason", "explanation", "failure", "cause"}:
            templates = ["{A} did not match the {b}.", "Requested because of the {b}.", "{A} issue."]
        elif field_words & {"note", "notes", "comment", "comments", "memo", "remarks", "feedback"}:
            templates = [
                "Follow up on the {a} with {p}.",
                "Checked the {a} against the {b}.",
                "{P} asked about the {a}.",
                "Updated the {a} after the {b}.",
            ]
        elif field_words & {"message", "body", "text", "content", "communication", "answer", "question"}:
            templates = [
                "Hi, could you confirm the {a} for the {b}? Thanks, {p}",
                "Your {a} is ready. Reply here with any questions about the {b}.",
                "Reminder about the {a}: please review the {b}.",
            ]
        else:
            templates = ["{A} for the {b}.", "{A} with {b}.", "Covers the {a} and the {b}."]
        text = rng.choice(templates).format(a=a, b=b, A=a[:1].upper() + a[1:], p=person, P=person)
        return text


def _title_case(text: str) -> str:
    small = {"and", "for", "of", "the", "to", "with", "in", "on"}
    parts = text.split()
    return " ".join(w if (i and w in small) else (w[:1].upper() + w[1:]) for i, w in enumerate(parts))
