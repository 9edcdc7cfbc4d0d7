"""The simulator's allocator settings (engine/simulation/_allocator.py): glibc accepts them, once per process."""

from __future__ import annotations

import os

import pytest

from trialflow.engine.simulation._allocator import keep_freed_arrays


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc(), reason="the thresholds are glibc's; elsewhere nothing is set")
def test_glibc_accepts_the_mmap_and_trim_thresholds() -> None:
    # mallopt answers 0 for a value it refuses (an mmap threshold above what this glibc allows, say)
    assert keep_freed_arrays() is True
    assert keep_freed_arrays() is True  # set once per process, then remembered
