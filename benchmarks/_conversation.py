"""The conversation the load and cost benchmarks hold: a genre and decade of their own, no, yes,
"just recommend something", "why the first one?"."""

from __future__ import annotations

GENRES = ["jazz", "rock", "pop", "folk", "electronic", "hip hop", "metal", "soul", "classical", "blues"]
DECADES = ["60s", "70s", "80s", "90s", "2000s"]


def lines(n: int) -> list[str]:
    """The five messages of conversation ``n`` (its opening cycles through genres and decades)."""
    return [f"{GENRES[n % 10]} from the {DECADES[n // 10 % 5]}", "no", "yes", "just recommend something",
            "why the first one?"]
