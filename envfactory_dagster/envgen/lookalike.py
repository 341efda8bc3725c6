"""Benchmark look-alike tags, so users can decontaminate training data from evaluation sets.

Several EnvFactory environments copy BFCL multi-turn classes or tau2-bench domains. We tag an
environment whose tool names resemble one of those toolsets. The reference lists below are the
public tool names of those benchmarks (facts about them, not their code); Unix-style BFCL names
carry a short gloss (`mkdir` -> "create directory") so spelled-out equivalents match.

Similarity (documented threshold): an environment tool matches a reference tool when their
word sets (singular, lower case; the reference's gloss words included) have Jaccard similarity
>= `MATCH_JACCARD`, or the names are equal. An environment is tagged `<bench>:<name>` when at
least `MIN_MATCHES` distinct reference tools are matched and the matched environment tools are
at least `MIN_SHARE` of its tools, and the matches share `MIN_NOUNS` domain words or
`MIN_EXACT` identical names.
"""

from __future__ import annotations

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.naming import singular, words

MATCH_JACCARD = 0.5
MIN_MATCHES = 3
MIN_SHARE = 0.25
# ... and the matches share at least MIN_NOUNS domain words (not generic verbs), or at least
# MIN_EXACT tool names are identical: "cancel a reservation" alone does not make an airline.
MIN_NOUNS = 2
MIN_EXACT = 2
GENERIC_WORDS = frozenset(
    [
        "get",
        "list",
        "search",
        "find",
        "create",
        "add",
        "update",
        "edit",
        "modify",
        "delete",
        "remove",
        "set",
        "cancel",
        "all",
        "by",
        "detail",
        "details",
        "info",
        "id",
        "view",
        "send",
        "make",
        "place",
        "check",
        "display",
        "estimate",
        "compute",
    ]
)

# tool name -> gloss ("" when the name says it all)
REFERENCE_TOOLSETS: dict[str, dict[str, str]] = {
    "bfcl:GorillaFileSystem": {
        "pwd": "print working directory", "ls": "list directory files", "cd": "change directory",
        "mkdir": "create directory", "rmdir": "remove directory", "touch": "create file",
        "echo": "write file content", "cat": "read file", "find": "find search file",
        "wc": "count file words lines", "sort": "sort file lines", "grep": "search file content pattern",
        "du": "disk usage directory size", "tail": "tail file lines", "diff": "compare file",
        "mv": "move file", "rm": "delete remove file", "cp": "copy file",
    },
    "bfcl:TwitterAPI": {
        "authenticate_twitter": "", "posting_get_login_status": "",
        "follow_user": "", "list_all_following": "",
        "unfollow_user": "", "get_tweet": "", "get_user_tweets": "", "post_tweet": "", "retweet": "",
        "comment": "comment post", "mention": "mention user", "get_tweet_comments": "", "search_tweets": "",
        "get_user_stats": "",
    },
    "bfcl:MessageAPI": {
        "list_users": "", "get_user_id": "", "message_login": "", "message_get_login_status": "",
        "send_message": "", "delete_message": "", "view_messages_sent": "", "add_contact": "",
        "search_messages": "", "get_message_stats": "",
    },
    "bfcl:TicketAPI": {
        "create_ticket": "", "get_ticket": "", "close_ticket": "", "resolve_ticket": "", "edit_ticket": "",
        "ticket_login": "", "ticket_get_login_status": "", "logout": "", "get_user_tickets": "",
    },
    "bfcl:MathAPI": {
        "logarithm": "", "mean": "", "standard_deviation": "", "si_unit_conversion": "",
        "imperial_si_conversion": "", "add": "add numbers", "subtract": "", "multiply": "", "divide": "",
        "power": "", "square_root": "", "absolute_value": "", "round_number": "", "percentage": "",
        "min_value": "", "max_value": "", "sum_values": "",
    },
    "bfcl:TradingBot": {
        "get_current_time": "", "update_market_status": "", "get_symbol_by_name": "", "get_stock_info": "",
        "get_order_details": "", "cancel_order": "", "place_order": "", "make_transaction": "",
        "get_account_info": "", "trading_login": "", "trading_get_login_status": "", "trading_logout": "",
        "fund_account": "", "remove_stock_from_watchlist": "", "get_watchlist": "", "add_to_watchlist": "",
        "get_order_history": "", "get_transaction_history": "", "update_stock_price": "",
        "get_available_stocks": "", "filter_stocks_by_price": "", "notify_price_change": "",
    },
    "bfcl:TravelAPI": {
        "authenticate_travel": "", "travel_get_login_status": "", "get_budget_fiscal_year": "",
        "register_credit_card": "", "get_flight_cost": "", "get_credit_card_balance": "", "book_flight": "",
        "retrieve_invoice": "", "list_all_airports": "", "cancel_booking": "", "compute_exchange_rate": "",
        "verify_traveler_information": "", "set_budget_limit": "", "get_nearest_airport_by_city": "",
        "purchase_insurance": "", "contact_customer_support": "", "get_all_credit_cards": "",
    },
    "bfcl:VehicleControlAPI": {
        "startEngine": "", "fillFuelTank": "", "lockDoors": "", "adjustClimateControl": "",
        "get_outside_temperature_from_google": "", "get_outside_temperature_from_weather_com": "",
        "setHeadlights": "", "displayCarStatus": "", "activateParkingBrake": "", "pressBrakePedal": "",
        "releaseBrakePedal": "", "setCruiseControl": "", "get_current_speed": "", "display_log": "",
        "estimate_drive_feasibility_by_mileage": "", "liter_to_gallon": "", "gallon_to_liter": "",
        "estimate_distance": "", "get_zipcode_based_on_city": "", "set_navigation": "",
        "check_tire_pressure": "", "find_nearest_tire_shop": "",
    },
    "tau2:airline": {
        "book_reservation": "", "cancel_reservation": "",
        "get_reservation_details": "", "get_user_details": "",
        "list_all_airports": "", "search_direct_flight": "",
        "search_onestop_flight": "", "send_certificate": "",
        "update_reservation_baggages": "",
        "update_reservation_flights": "", "update_reservation_passengers": "",
        "get_flight_status": "", "calculate": "", "transfer_to_human_agents": "",
    },
    "tau2:retail": {
        "get_order_details": "", "cancel_pending_order": "", "return_delivered_order_items": "",
        "exchange_delivered_order_items": "", "modify_pending_order_items": "",
        "modify_pending_order_address": "", "modify_pending_order_payment": "", "modify_user_address": "",
        "get_user_details": "", "get_product_details": "", "list_all_product_types": "",
        "find_user_id_by_email": "", "find_user_id_by_name_zip": "", "calculate": "",
        "transfer_to_human_agents": "",
    },
    "tau2:telecom": {
        "get_customer_by_phone": "", "get_customer_by_id": "", "get_customer_by_name": "",
        "get_details_by_id": "", "suspend_line": "", "resume_line": "", "get_bills_for_customer": "",
        "send_payment_request": "", "get_data_usage": "", "enable_roaming": "", "disable_roaming": "",
        "refuel_data": "", "transfer_to_human_agents": "",
    },
}  # fmt: skip


def _word_set(text: str) -> frozenset[str]:
    return frozenset(singular(w) for w in words(text))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def lookalike_tags(spec: EnvSpec) -> list[str]:
    """Sorted tags (`bfcl:<Class>`, `tau2:<domain>`) of the benchmark toolsets `spec` resembles."""
    tags = []
    tool_words = {t.name: _word_set(t.name) for t in spec.tools}
    for tag, reference in REFERENCE_TOOLSETS.items():
        ref_words = {name: _word_set(name) | _word_set(gloss) for name, gloss in reference.items()}
        matched_refs: set[str] = set()
        matched_tools: set[str] = set()
        exact = 0
        nouns: set[str] = set()
        for tool_name, tw in tool_words.items():
            for ref_name, rw in ref_words.items():
                if tool_name == ref_name or _jaccard(tw, rw) >= MATCH_JACCARD:
                    matched_refs.add(ref_name)
                    matched_tools.add(tool_name)
                    exact += tool_name == ref_name
                    nouns |= (tw & rw) - GENERIC_WORDS
        similar = len(matched_refs) >= MIN_MATCHES and len(matched_tools) >= MIN_SHARE * max(
            1, len(spec.tools)
        )
        if similar and (len(nouns) >= MIN_NOUNS or exact >= MIN_EXACT):
            tags.append(tag)
    return sorted(tags)
