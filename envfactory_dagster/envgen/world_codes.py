"""Standard codes of the real world: ISO 4217 currencies, ISO 3166-1 countries, ISO 639-1
languages, IANA time zones, and the few facts pycountry does not carry (a currency's minor unit).

Validation and generation pools for seed data and for the world-quality audit; pycountry is the
authority for the ISO lists, `zoneinfo` (with the tzdata package) for time zones.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

import pycountry

from envfactory_dagster.envgen.naming import word_set

# ISO 4217 minor units that are not 2 (the standard's own table; everything else has 2 decimals)
CURRENCY_EXPONENT_EXCEPTIONS = {
    **dict.fromkeys(word_set("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0),
    **dict.fromkeys(word_set("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(word_set("CLF UYW"), 4),
}
# currencies that most real ledgers hold, most common first (used when a document shows none)
COMMON_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "NZD", "SGD", "MXN", "INR")
# the currency of the countries `Faker.local_latlng` places rows in, and their calling codes
COUNTRY_CURRENCY = {
    "US": "USD", "CA": "CAD", "GB": "GBP", "IE": "EUR", "FR": "EUR", "DE": "EUR", "ES": "EUR",
    "IT": "EUR", "NL": "EUR", "BE": "EUR", "AT": "EUR", "PT": "EUR", "FI": "EUR", "GR": "EUR",
    "AU": "AUD", "NZ": "NZD", "JP": "JPY", "CH": "CHF", "SE": "SEK", "NO": "NOK", "DK": "DKK",
    "IN": "INR", "BR": "BRL", "MX": "MXN", "ZA": "ZAR", "SG": "SGD", "KR": "KRW", "PL": "PLN",
}  # fmt: skip
CALLING_CODES = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "FR": "33", "DE": "49", "ES": "34", "IT": "39",
    "NL": "31", "BE": "32", "AT": "43", "PT": "351", "FI": "358", "GR": "30", "AU": "61", "NZ": "64",
    "JP": "81", "CH": "41", "SE": "46", "NO": "47", "DK": "45", "IN": "91", "BR": "55", "MX": "52",
    "ZA": "27", "SG": "65", "KR": "82", "PL": "48",
}  # fmt: skip
COMMON_LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "ja", "sv", "pl")
# large airports (IATA codes) for travel documents whose examples show none
AIRPORTS = tuple(
    sorted(
        word_set(
            "JFK LAX ORD ATL DFW SFO SEA BOS MIA DEN LHR CDG FRA AMS MAD BCN FCO MUC ZRH DUB "
            "YYZ YVR NRT HND ICN SIN HKG SYD MEL DXB DOH IST CPH ARN OSL LIS GRU MEX JNB DEL"
        )
    )
)


@cache
def currency_codes() -> frozenset[str]:
    """Active ISO 4217 alphabetic codes (upper case)."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


@cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 and alpha-3 codes (upper case)."""
    return frozenset(c.alpha_2 for c in pycountry.countries) | frozenset(
        c.alpha_3 for c in pycountry.countries
    )


@cache
def country_names() -> frozenset[str]:
    """ISO 3166-1 short and common names (lower case)."""
    names = set()
    for c in pycountry.countries:
        names.add(c.name.lower())
        for attr in ("common_name", "official_name"):
            value = getattr(c, attr, None)
            if value:
                names.add(value.lower())
    return frozenset(names)


@cache
def language_codes() -> frozenset[str]:
    """ISO 639-1 two-letter language codes (lower case)."""
    return frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


@cache
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_currency_code(value: object) -> bool:
    return isinstance(value, str) and value.upper() in currency_codes() and len(value) == 3


def is_country_code(value: object) -> bool:
    return isinstance(value, str) and len(value) in (2, 3) and value.upper() in country_codes()


def is_country_name(value: object) -> bool:
    return isinstance(value, str) and value.lower() in country_names()


def is_language_code(value: object) -> bool:
    if not isinstance(value, str):
        return False
    primary = value.replace("_", "-").split("-")[0]
    return primary.lower() in language_codes() and len(primary) == 2


def is_timezone(value: object) -> bool:
    return isinstance(value, str) and value in timezones()


def currency_exponent(code: str | None) -> int:
    """Decimal places of the currency's minor unit (ISO 4217; 2 unless listed otherwise)."""
    return CURRENCY_EXPONENT_EXCEPTIONS.get((code or "").upper(), 2)


def alpha3_of(alpha2: str) -> str:
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    return country.alpha_3 if country is not None else alpha2


def country_name_of(alpha2: str) -> str:
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    return getattr(country, "common_name", None) or country.name if country is not None else alpha2


# widely held listed companies and airlines, for documents that show no example of their own
TICKERS = (
    "AAPL",
    "MSFT",
    "AMZN",
    "GOOGL",
    "NVDA",
    "TSLA",
    "META",
    "JPM",
    "V",
    "KO",
    "PEP",
    "DIS",
    "NFLX",
    "SPY",
)
AIRLINES = ("AA", "UA", "DL", "BA", "LH", "AF", "KL", "IB", "EK", "QR", "SQ", "NH", "AC", "QF", "LX")
