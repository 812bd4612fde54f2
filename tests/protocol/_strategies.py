"""Hypothesis strategies and settings shared by the property tests of the pure protocol code."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# no deadline: the machine running the suite may be busy (speed targets belong in bench/)
PROPERTY = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
# any value a JSON decoder can return
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# URL-ish text: the characters that upset URL parsers (brackets, colons, percent signs, spaces, slashes)
url_text = st.text(alphabet=st.sampled_from("[]:/?#@%. \\abcAB01-_~+\x00é"), max_size=24) | st.text(max_size=24)


def any_case(name: str) -> st.SearchStrategy[str]:
    """`name` in a random letter case (the services matched property names case-insensitively)."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))
    )


def objects_with(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects holding some of `fields` (names in any case, values from each strategy or any JSON)."""
    entries = [st.tuples(any_case(name), values | json_values) for name, values in fields.items()]
    return st.lists(st.one_of(*entries), max_size=len(fields) + 1).map(dict)
