"""How a status change is said: the tool's own verb, the status's verb, never a bare "mark"."""

from __future__ import annotations

from envfactory_dagster.querygen.surface import past_tense, transition_verb, verb_with_object


def test_a_mark_tool_says_what_it_marks_the_record_as() -> None:
    verb = transition_verb("mark_request_in_transit", "in_transit")
    assert verb == "mark as in transit"
    assert verb_with_object(verb, "my request") == "mark my request as in transit"
    assert past_tense(verb) == "marked as in transit"
    assert transition_verb("mark_waitlist_entry_left", "LEFT") == "mark as left"


def test_other_tools_keep_their_own_verb_or_the_status_verb() -> None:
    assert transition_verb("cancel_order", "cancelled") == "cancel"
    assert transition_verb("update_status", "archived") == "archive"
    assert verb_with_object("cancel", "the order") == "cancel the order"
