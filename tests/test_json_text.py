"""The engine's JSON texts (stored payloads, dedup keys, the hash chain's bodies, visit bodies) are built by an
encoder set up once (engine/_json.py): the text must be the standard library's, byte for byte, for any value,
since stored hashes and dedup keys are computed from it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialflow.engine._json import json_encoder

#: the formats the engine writes (engine/_store.py, engine/_chain.py, engine/_projection.py)
FORMATS: list[dict[str, Any]] = [
    {"sort_keys": True, "ensure_ascii": False},
    {"sort_keys": True, "separators": (",", ":")},
    {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False},
    {"separators": (",", ":")},
]

_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text())
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=6), max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(value=_VALUES)
def test_every_format_writes_the_standard_librarys_text(value: Any) -> None:
    for options in FORMATS:
        assert json_encoder(**options)(value) == json.JSONEncoder(**options).encode(value), options


def test_special_floats_keys_and_non_ascii_text_as_the_standard_library_writes_them() -> None:
    value = {"é": [math.nan, math.inf, -math.inf, 1e-7, 2.5], "b": "Hürthle \u2028 \"q\" \\", "a": (1, True, None)}
    for options in FORMATS:
        assert json_encoder(**options)(value) == json.dumps(value, **options)
    assert json_encoder(sort_keys=True)("a \u00e9") == json.dumps("a \u00e9", sort_keys=True) == '"a \\u00e9"'


def test_what_the_standard_library_refuses_it_refuses_too() -> None:
    encode = json_encoder(sort_keys=True, ensure_ascii=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"when": object()})
    with pytest.raises(TypeError):
        encode({1: "a", "b": 2})  # keys of different kinds cannot be sorted
    with pytest.raises(ValueError, match="Out of range float"):
        json_encoder(allow_nan=False)([math.nan])
