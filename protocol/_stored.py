"""A registered version's data, kept as JSON beside the validation cache: the store's text, read once.

Rebuilding a registered version from its stored YAML costs a command the YAML reader's import and its
parse (some 25 ms of a 600 ms start-up, issue 12): the version was validated when it was registered, so
all that is needed is its data. The first process that reads a stored text writes that text's data as
JSON to ``<cache>/protocols/<sha256 of the text>.json`` (``<cache>`` as in ``documents/_trusted.py``,
``TRIALFLOW_CACHE_DIR=off`` turns it off); later ones read it with ``json.loads``.

Nothing in the file is trusted: its data is used only if it hashes to the content hash the version was
registered under, which is the hash of the data validated then; a file that does not (damaged, written
by someone else, or by a trialflow that read the text otherwise) is read from the YAML again and
rewritten. JSON gives the data back as it was: the document reader refuses keys that are not text, and
JSON's types are the ones a protocol's YAML is read into. JSON only, never pickle: loading it runs no code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ._build import content_hash

__all__ = ["cached_data", "remember_data"]


def _path(text: str) -> Path | None:
    from trialflow.documents._trusted import cache_file

    where = cache_file()
    if where is None:
        return None
    return where.parent / "protocols" / f"{hashlib.sha256(text.encode()).hexdigest()}.json"


def cached_data(text: str, expected_hash: str) -> dict[str, Any] | None:
    """The data of the stored protocol ``text`` if the cache holds it and it hashes to ``expected_hash``."""
    path = _path(text)
    if path is None:
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or content_hash(data) != expected_hash:
        return None
    return data


def remember_data(text: str, data: dict[str, Any]) -> None:
    """Keep ``data``, read from the stored protocol ``text``, for the next process (best effort: a cache
    that cannot be written is left alone). Written whole under a temporary name, then renamed into place,
    so a process that reads it at the same time finds the old file, the new one, or none."""
    path = _path(text)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".protocol-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
