"""JSON text of the engine's own values, built by the C encoder set up once per format.

``json.JSONEncoder(...).encode`` sets up a new C encoder (and a Python closure beside it) on every call; for
a short value that set-up costs more than the encoding. A store writes three JSON texts per event (the
stored payload, the dedup key's, the hash chain's body), so the demo's 10^4 patients make some 10^6 calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

__all__ = ["json_encoder"]


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """``json.JSONEncoder(**options).encode`` (without ``indent``), as the same text: the C encoder with the
    same settings, made once. It keeps no state between calls, so it does not check for circular
    references (a value that contains itself fails with ``RecursionError``, not ``ValueError``): the
    values written are made of dicts, lists and scalars built afresh. Without the C accelerator the
    standard encoder itself is answered."""
    base = json.JSONEncoder(**options, check_circular=False)
    if c_make_encoder is None or base.indent is not None:
        return base.encode
    encoder = c_make_encoder(None, base.default, encode_basestring_ascii if base.ensure_ascii else encode_basestring,
                             None, base.key_separator, base.item_separator, base.sort_keys, base.skipkeys,
                             base.allow_nan)
    join = "".join

    def encode(value: Any) -> str:
        return join(encoder(value, 0))

    return encode
