"""The words of user requests: how values are written and how a request is phrased.

Shared by the explicit queries of `trajectories` (query_templates) and the refined ones
(refine.template_refiner), so both speak the same way:

- values in a person's words: `in_progress` -> "in progress", `FULLY_REFUNDED` -> "fully
  refunded", `2026-03-12` -> "March 12, 2026", `25.0` -> "25"; `value_forms` lists every form a
  query may use for a value, so a value written in words still counts as stated (grounding proofs);
- action clauses: an action verb per operation and entity kind ("cancel the order", "book a
  table", "push the due date of ... to ..."), never "mark as <status>";
- message frames: openers, requests, connectors and closings drawn from large banks, so that
  no handful of phrasings dominates.

All choices are drawn from the caller's seeded `random.Random`; nothing here reads a clock.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from envfactory_dagster.envgen.naming import plural, words

_IDENTIFIER = re.compile(r"^[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
_MONTHS = (
    "January February March April May June July August September October November December".split()  # noqa: SIM905
)


# -- values ------------------------------------------------------------------------------
def humanize_identifier(value: str) -> str:
    """`in_progress` -> "in progress", `FULLY_REFUNDED` -> "fully refunded"; other text unchanged."""
    if not _IDENTIFIER.match(value):
        return value
    return " ".join(w.lower() if w.isupper() or w.islower() else w for w in value.split("_"))


def humanize_enum(value: Any) -> str:
    """An enum value in words (`READY_TO_SHIP` -> "ready to ship", `PENDING` -> "pending"); short
    upper-case codes stay as they are (`USD`, `GB`)."""
    text = humanize_identifier(str(value))
    return text.lower() if text.isupper() and len(text) > 3 else text


def _date_words(value: str) -> str | None:
    if _DATE.match(value):
        year, month, day = (int(p) for p in value.split("-"))
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{_MONTHS[month - 1]} {day}, {year}"
    return None


def _date_time_words(value: str) -> str | None:
    if not _DATE_TIME.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    zone = " UTC" if value.endswith("Z") or value.endswith("+00:00") else ""
    return f"{_MONTHS[moment.month - 1]} {moment.day}, {moment.year} at {moment:%H:%M}{zone}"


def boolean_words(label: str, value: bool) -> str:
    """How a yes/no setting is said: "<label>: yes"."""
    return f"{label}: {'yes' if value else 'no'}"


@functools.lru_cache(maxsize=65536)
def _string_forms(value: str) -> tuple[str, ...]:
    forms = [value]
    for other in (humanize_identifier(value), _date_words(value), _date_time_words(value)):
        if other and other not in forms:
            forms.append(other)
    return tuple(forms)


def value_forms(value: Any, label: str | None = None) -> list[str]:
    """Every way a query may write `value` (25.0 -> "25.0", "25"; a date also in words). A boolean
    is written only with its `label` ("notify customer: yes"); without one it has no form."""
    if isinstance(value, bool):
        return [boolean_words(label, value)] if label else []
    if value is None:
        return []
    if isinstance(value, float) and value.is_integer():
        return [repr(value), str(int(value))]
    if isinstance(value, int | float):
        return [str(value)]
    if isinstance(value, str):
        return list(_string_forms(value)) if value else []
    return []


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def contains_token(text: str, token: str, *, ignore_case: bool) -> bool:
    """True if `token` occurs in `text` with no letter, digit or underscore right before or after it.

    ASCII text is scanned with `str.find` (refinement asks this tens of thousands of times with
    ever new tokens, and compiling a pattern per token dominated its cost); other text goes
    through the equivalent regular expression, whose case folding covers non-ASCII letters.
    """
    if not (text.isascii() and token.isascii()):
        pattern = rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])"
        return re.search(pattern, text, flags=re.IGNORECASE if ignore_case else 0) is not None
    if ignore_case:
        text, token = text.lower(), token.lower()
    start = text.find(token)
    while start != -1:
        end = start + len(token)
        if (start == 0 or text[start - 1] not in _WORD_CHARS) and (
            end == len(text) or text[end] not in _WORD_CHARS
        ):
            return True
        start = text.find(token, start + 1)
    return False


def says_nothing(value: Any) -> bool:
    """True for an empty object: an argument a schema requires but declares nothing of, which a
    person has no words for ("transaction {}") and a caller fills from the schema alone."""
    return isinstance(value, dict) and not value


def is_literal_in(value: Any, text: str, label: str | None = None) -> bool:
    """True if the value is written in `text` (any of its forms, as whole words, any case); a list
    when each of its items is; a boolean only with its `label` ("notify customer: yes"); an empty
    object always (there is nothing to write)."""
    if says_nothing(value):
        return True
    if isinstance(value, list):
        return all(is_literal_in(v, text) for v in value)
    return any(contains_token(text, form, ignore_case=True) for form in value_forms(value, label))


def natural_value(value: Any, label: str | None = None) -> str:
    """The form a person writes: words for dates, enums and identifiers; "25" for 25.0."""
    if isinstance(value, bool):
        return boolean_words(label or "enabled", value)
    if isinstance(value, list):
        items = [natural_value(v) for v in value]
        return join_words(items) if items else "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return _date_time_words(value) or _date_words(value) or humanize_identifier(value)
    return str(value)


def join_words(items: Sequence[str], rng: random.Random | None = None) -> str:
    """ "a, b and c"; with `rng`, sometimes "a, b, plus c" or "a, b as well as c"."""
    items = list(items)
    if not items:
        return ""
    last = " and "
    if rng is not None and len(items) > 1:
        last = rng.choice((" and ", " and ", ", plus ", " as well as ", " and also "))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1]


@functools.lru_cache(maxsize=8192)  # a few hundred names, asked for tens of thousands of times
def field_label(name: str) -> str:
    """A field name in words without a trailing id ("due_date" -> "due date", "vendor_id" -> "vendor")."""
    parts = words(re.sub(r"(?<=[A-Za-z])(\d+)$", r" \1", name))  # "street1" -> "street 1"
    if len(parts) > 1 and parts[-1] in ("id", "ids", "key", "uuid"):
        parts = parts[:-1]
    if len(parts) > 1 and parts[0] in ("is", "has", "should", "can"):
        parts = parts[1:]
    return " ".join(parts)


def plural_words(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    return f"{head} {plural(last)}".strip() if last else plural(noun)


_CONSONANT_SOUND = ("uni", "use", "usu", "uti", "ure", "url", "eu", "one", "once")
_VOWEL_SOUND = ("hour", "honest", "honor", "honour", "heir")


def a_or_an(noun: str) -> str:
    """ "an order", "a user", "an hour": by the sound of the first word, not only its letter."""
    word = noun.lower()
    vowel = (word[:1] in "aeiou" and not word.startswith(_CONSONANT_SOUND)) or word.startswith(_VOWEL_SOUND)
    return f"an {noun}" if vowel else f"a {noun}"


# -- action verbs ----------------------------------------------------------------------------
# Entity-kind flavours: a noun word -> verbs a person uses for making / removing such a thing.
_CREATE_VERBS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("reservation", "booking", "table", "appointment", "flight", "room", "seat"), ("book",)),
    **dict.fromkeys(("event", "meeting", "pickup", "class", "session", "reminder", "call"), ("schedule",)),
    **dict.fromkeys(("message", "comment", "reply", "post", "review", "note"), ("post", "write")),
    **dict.fromkeys(("issue", "ticket", "bug", "incident", "dispute", "claim", "return"), ("file", "open")),
    **dict.fromkeys(("file", "image", "media", "document", "attachment", "photo"), ("upload", "add")),
    **dict.fromkeys(("invoice", "bill", "estimate", "quote", "label"), ("create", "draw up")),
    **dict.fromkeys(("listing", "draft", "offer"), ("create", "put up")),
    **dict.fromkeys(
        ("playlist", "collection", "folder", "list", "channel", "group", "bucket"), ("create", "start")
    ),
    **dict.fromkeys(("payment", "transfer", "refund", "charge", "payout"), ("make", "send")),
    **dict.fromkeys(("activity", "expense", "entry", "time", "workout"), ("log", "record")),
    **dict.fromkeys(("member", "user", "customer", "contact", "recipient", "patron", "student"), ("add",)),
}
_CREATE_DEFAULT = ("create", "add", "set up", "make")
_DELETE_DEFAULT = ("delete", "remove", "get rid of", "drop")
_DELETE_VERBS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("reservation", "booking", "appointment", "event", "meeting", "pickup"), ("cancel", "delete")
    ),
    **dict.fromkeys(("message", "comment", "post", "review", "listing"), ("delete", "take down")),
    **dict.fromkeys(("member", "user", "contact", "collaborator", "recipient"), ("remove",)),
}
# A transition's status value -> the verb a person says (the inverse of spec inference's table)
_STATUS_VERBS = {
    "cancelled": "cancel",
    "canceled": "cancel",
    "archived": "archive",
    "paid": "pay",
    "closed": "close",
    "reopened": "reopen",
    "approved": "approve",
    "rejected": "reject",
    "published": "publish",
    "unpublished": "unpublish",
    "completed": "complete",
    "done": "finish",
    "confirmed": "confirm",
    "shipped": "ship",
    "fulfilled": "fulfil",
    "delivered": "mark as delivered",
    "refunded": "refund",
    "void": "void",
    "voided": "void",
    "activated": "activate",
    "inactive": "deactivate",
    "deactivated": "deactivate",
    "suspended": "suspend",
    "resumed": "resume",
    "paused": "pause",
    "started": "start",
    "running": "start",
    "stopped": "stop",
    "resolved": "resolve",
    "acknowledged": "acknowledge",
    "assigned": "assign",
    "submitted": "submit",
    "accepted": "accept",
    "declined": "decline",
    "checked_in": "check in",
    "checked_out": "check out",
    "booked": "book",
    "sent": "send",
    "scheduled": "schedule",
    "expired": "expire",
    "locked": "lock",
    "unlocked": "unlock",
    "blocked": "block",
    "enabled": "enable",
    "disabled": "disable",
    "finalized": "finalize",
    "settled": "settle",
    "returned": "return",
    "restored": "restore",
    "muted": "mute",
    "snoozed": "snooze",
}
_TRANSITION_TOOL_VERBS = frozenset(v.split()[0] for v in _STATUS_VERBS.values()) | {
    "capture",
    "merge",
    "dismiss",
    "escalate",
    "retry",
    "hold",
    "release",
    "unarchive",
    "unblock",
    "reactivate",
    "withdraw",
    "redeem",
    "renew",
    "verify",
    "validate",
    "approve",
    "submit",
    "invite",
    "assign",
    "unassign",
    "enroll",
    "grade",
    "flag",
    "pin",
    "unpin",
    "star",
    "unstar",
    "follow",
    "unfollow",
    "like",
    "unlike",
    "play",
    "skip",
    "reserve",
    "rotate",
    "purge",
    "sync",
    "transfer",
    "charge",
    "checkout",
    "lock",
    "unlock",
    "trash",
    "restore",
}


def _kind_verbs(noun: str, table: dict[str, tuple[str, ...]], default: tuple[str, ...]) -> tuple[str, ...]:
    last = noun.split()[-1] if noun else ""
    return table.get(last, ()) + default if last in table else default


def action_verb(tool_name: str) -> str | None:
    """The tool name's first word when it is a verb a person uses for an action (`unlock_topic`)."""
    first = (words(tool_name) or [""])[0]
    return first if first in _TRANSITION_TOOL_VERBS else None


def transition_verb(tool_name: str, to_value: Any) -> str | None:
    """The verb a person uses for a status change: the tool's own verb (`cancel_order` -> cancel), or
    the verb of the target status (`archived` -> archive); None when neither says one."""
    first = (words(tool_name) or [""])[0]
    if first == "mark":  # "mark" alone says nothing: mark as what (`mark_request_in_transit`)
        return f"mark as {humanize_enum(to_value)}" if to_value not in (None, "") else None
    if first in _TRANSITION_TOOL_VERBS:
        return first
    return _STATUS_VERBS.get(str(to_value).lower())


def verb_with_object(verb: str, target: str) -> str:
    """ "cancel" + "the order" -> "cancel the order"; "mark as shipped" + "the order" -> "mark the
    order as shipped" (the object goes before the verb's "as")."""
    head, as_, rest = verb.partition(" as ")
    return f"{head} {target} as {rest}" if as_ else f"{verb} {target}"


_IRREGULAR_PAST = {
    "pay": "paid",
    "send": "sent",
    "put up": "put up",
    "draw up": "drawn up",
    "get rid of": "got rid of",
}


def past_tense(verb: str) -> str:
    """ "cancel" -> "cancelled", "approve" -> "approved", "check in" -> "checked in"."""
    head, _, rest = verb.partition(" ")
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if head in _IRREGULAR_PAST:
        past = _IRREGULAR_PAST[head]
    elif head.endswith("e"):
        past = head + "d"
    elif head.endswith("y") and head[-2:-1] not in "aeiou":
        past = head[:-1] + "ied"
    elif head in ("cancel", "label", "fulfil", "travel", "model") or (
        len(head) <= 4 and re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", head)
    ):
        past = head + head[-1] + "ed"
    else:
        past = head + "ed"
    return f"{past} {rest}".strip()


def with_details(rng: random.Random, listed: str, *, filtering: bool = False) -> str:
    """ " with a, b and c" in one of several forms ("" when there is nothing to list)."""
    if not listed:
        return ""
    forms = (
        (" with {x}", " where {x}", " that have {x}", " filtered to {x}", " limited to {x}")
        if filtering
        else (" with {x}", ": {x}", " using {x}", " that has {x}", " - {x}", " set to {x}")
    )
    return rng.choice(forms).format(x=listed)


def create_clause(rng: random.Random, noun: str, details: str) -> str:
    verb = rng.choice(_kind_verbs(noun, _CREATE_VERBS, _CREATE_DEFAULT))
    new = rng.choice(("", "", "new "))
    article = a_or_an(f"{new}{noun}")
    return f"{verb} {article}{details}"


def delete_clause(rng: random.Random, noun: str, target: str) -> str:
    return f"{rng.choice(_kind_verbs(noun, _DELETE_VERBS, _DELETE_DEFAULT))} {target}"


_GET = (
    "show me {t}",
    "pull up {t}",
    "look up {t}",
    "open {t}",
    "give me the details of {t}",
    "check {t} for me",
    "tell me what's on {t}",
    "bring up {t}",
    "fetch {t}",
    "get me {t}",
    "give me {t}",
    "find {t} and show it to me",
    "read me {t}",
    "have a look at {t}",
    "dig out {t}",
    "look into {t}",
)
_LIST = (
    "list {p}{f}",
    "show me {p}{f}",
    "show me every {n}{f}",
    "give me an overview of {p}{f}",
    "pull up {p}{f}",
    "tell me which {p} there are{f}",
    "go through {p}{f}",
    "get me all {p}{f}",
    "let me see {p}{f}",
    "round up {p}{f}",
    "check what {p} exist{f}",
    "run through {p}{f}",
    "list out {p}{f}",
    "bring up all {p}{f}",
    "see which {p} we have{f}",
    "look over {p}{f}",
    "enumerate {p}{f}",
    "fetch {p}{f}",
    "show all {p}{f}",
)
_SEARCH = (
    "find {p} matching {q}",
    "search {p} for {q}",
    "look for {p} about {q}",
    "dig up {p} that mention {q}",
    "check whether any {n} matches {q}",
    "hunt down {p} with {q} in them",
    "see what {p} come up for {q}",
    "track down {p} matching {q}",
    "search through {p} for {q}",
    "find any {n} that mentions {q}",
    "look up {p} by {q}",
    "run a search on {p} for {q}",
)


def get_clause(rng: random.Random, target: str) -> str:
    return rng.choice(_GET).format(t=target)


def list_clause(rng: random.Random, noun: str, filters: str) -> str:
    return rng.choice(_LIST).format(p=plural_words(noun), n=noun, f=filters)


def search_clause(rng: random.Random, noun: str, terms: str) -> str:
    return rng.choice(_SEARCH).format(p=plural_words(noun), n=noun, q=terms)


def change_phrase(rng: random.Random, label: str, value_text: str, old: Any, new: Any, *, kind: str) -> str:
    """One requested change of a field, in the user's words ("raise the priority to high"), without
    the row it applies to. `kind`: date | number | name | status | flag | text."""
    if kind == "date":
        return rng.choice(
            (
                f"move the {label} to {value_text}",
                f"push the {label} to {value_text}",
                f"change the {label} to {value_text}",
            )
            if str(new) > str(old)
            else (
                f"move the {label} up to {value_text}",
                f"bring the {label} forward to {value_text}",
                f"set the {label} to {value_text}",
            )
        )
    if kind == "number" and isinstance(old, int | float) and isinstance(new, int | float):
        verbs = ("raise", "increase", "bump") if new > old else ("lower", "reduce", "cut")
        return f"{rng.choice(verbs)} the {label} to {value_text}"
    if kind == "name":
        return rng.choice(
            (f"rename it to {value_text}", f"change the {label} to {value_text}", f"call it {value_text}")
        )
    if kind == "status":
        return rng.choice(
            (
                f"switch the {label} to {value_text}",
                f"set the {label} to {value_text}",
                f"change the {label} to {value_text}",
            )
        )
    if kind == "flag":
        return f"set {value_text}"
    return rng.choice(
        (
            f"change the {label} to {value_text}",
            f"set the {label} to {value_text}",
            f"make the {label} {value_text}",
            f"update the {label} to {value_text}",
        )
    )


def update_clause(rng: random.Random, target: str, changes: list[str]) -> str:
    """Changes to one row: "for the order ..., raise the priority to high and move the due date to ..."."""
    if len(changes) == 1 and changes[0].startswith("rename it"):
        return changes[0].replace("it", target, 1)
    joined = join_words(changes)
    return rng.choice(
        (
            f"{joined} on {target}",
            f"{joined} for {target}",
            f"take {target} and {joined}",
            f"update {target}: {joined}",
        )
    )


# -- message frames ---------------------------------------------------------------------------
# Each frame wraps a verb phrase ("cancel the order ..."); a frame ends with its own punctuation.
# Frames where the user is the subject ("I'd like to {vp}") do not take a phrase that says "me"
# ("show me ..."): `frame_request` keeps those to the frames addressed to the assistant.
_ASKING = (
    "Could you {vp}?",
    "Can you {vp}?",
    "Please {vp}.",
    "I need you to {vp}.",
    "{VP}, please.",
    "{VP}.",
    "Would you {vp}?",
    "Go ahead and {vp}.",
    "Any chance you could {vp}?",
    "I'm hoping you can {vp}.",
    "Quick one: {vp}.",
    "When you get a sec, {vp}.",
    "Could you please {vp}?",
    "Can I get you to {vp}?",
    "Kindly {vp}.",
    "Do me a favour and {vp}.",
    "First thing: {vp}.",
    "Could I ask you to {vp}?",
    "Would it be possible to {vp}?",
    "I'd appreciate it if you could {vp}.",
    "Your task: {vp}.",
    "Please go ahead and {vp}.",
    "Can you help and {vp}?",
    "Would you be able to {vp}?",
)
_SELF = (
    "I'd like to {vp}.",
    "I want to {vp}.",
    "Help me {vp}.",
    "Let's {vp}.",
    "I have to {vp} - can you take care of it?",
    "Mind helping me {vp}?",
    "Time to {vp}.",
    "I need to {vp}.",
    "I'm trying to {vp}.",
)
_FOLLOW_ASKING = (
    "Also, {vp}.",
    "And {vp}.",
    "Now {vp}.",
    "Next, {vp}.",
    "One more thing: {vp}.",
    "After that, could you {vp}?",
    "Then {vp}.",
    "While you're at it, {vp}.",
    "Oh, and {vp}.",
    "Can you also {vp}?",
    "Following up: {vp}.",
    "Right, now {vp}.",
    "Good. Now please {vp}.",
    "Thanks. Could you now {vp}?",
    "Perfect. {VP}.",
    "Another thing - {vp}.",
    "Last bit: {vp}.",
    "OK, {vp}.",
    "Great. Next, {vp}.",
    "That's done? Then {vp}.",
    "Moving on: {vp}.",
    "Also please {vp}.",
    "Nice. Could you {vp} too?",
    "Alright, {vp}.",
    "In addition, {vp}.",
    "One last request: {vp}.",
    "Next up, {vp}.",
    "Cool, now {vp}.",
    "Good, and {vp}.",
    "Let's continue: {vp}.",
)
_FOLLOW_SELF = (
    "Okay, next I'd like to {vp}.",
    "I also need to {vp}.",
    "Now I want to {vp}.",
    "Great, now let's {vp}.",
    "Next I have to {vp}.",
)
_JOINERS = (
    "{a}, and then {b}",
    "{a} and {b}",
    "{a}; after that, {b}",
    "{a}, then {b}",
    "{a}, and once that's done {b}",
    "{a}, and also {b}",
    "{a}; then {b}",
    "{a}, after which {b}",
    "{a}; next, {b}",
    "{a} - and {b}",
    "{a}, plus {b}",
    "{a}, and later {b}",
    "{a}, and afterwards {b}",
    "{a}; also {b}",
)
_CLOSINGS = (
    *([""] * 14),
    " Thanks!",
    " Thank you.",
    " Cheers.",
    " Ta.",
    " Thx.",
    " Appreciated.",
    " Great, thanks.",
    " Many thanks.",
    " Thanks in advance.",
    " Much obliged.",
)
_INTERJECTIONS = (
    "Hmm, ",
    "Oh, ",
    "Okay so ",
    "Right - ",
    "Wait, ",
    "Also - ",
    "Actually, ",
    "By the way, ",
    "So ",
    "Ah, ",
)
_SAYS_ME = re.compile(r"\bme\b")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def join_clauses(rng: random.Random, clauses: Sequence[str]) -> str:
    """Several verb phrases as one (goal expansion): "find X, and then cancel it"."""
    out = clauses[0]
    for clause in clauses[1:]:
        out = rng.choice(_JOINERS).format(a=out, b=clause)
    return out


def frame_request(rng: random.Random, verb_phrase: str, *, follow_up: bool, context: str = "") -> str:
    """A user message asking for `verb_phrase`: a context sentence (first turn), an opener frame or a
    follow-up frame, and sometimes a closing."""
    asking, own = (_FOLLOW_ASKING, _FOLLOW_SELF) if follow_up else (_ASKING, _SELF)
    frames = asking if _SAYS_ME.search(verb_phrase) else asking + own
    body = rng.choice(frames).format(vp=verb_phrase, VP=_capital(verb_phrase))
    if follow_up and rng.random() < 0.25:
        keep_case = body.startswith(("I ", "I'"))
        body = rng.choice(_INTERJECTIONS) + (body if keep_case else body[:1].lower() + body[1:])
    text = f"{context} {body}".strip() if context else body
    return _capital(text) + rng.choice(_CLOSINGS)
