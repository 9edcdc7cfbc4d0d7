"""Where an export writes: a folder that exists or can be made, refused with a sentence otherwise."""

from __future__ import annotations

from pathlib import Path

from trialflow.engine import Refused

__all__ = ["output_folder"]


def output_folder(out: str | Path) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise Refused(f"{folder} is a file: --out names the folder the export writes into")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Refused(f"cannot create the folder {folder}: {err.strerror or err}") from None
    return folder
