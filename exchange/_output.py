"""Where an export writes: a folder that exists or can be made, refused with a sentence otherwise; a file of
patient data that only its owner may read."""

from __future__ import annotations

import os
from pathlib import Path

from trialflow.engine import Refused

__all__ = ["output_folder", "private_file"]


def output_folder(out: str | Path, *, private: bool = False) -> Path:
    """The folder ``out``, made if it is not there; ``private``: the export holds patient data, so a folder it
    makes is its owner's alone (mode 0700; a folder that exists keeps its mode)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise Refused(f"{folder} is a file: --out names the folder the export writes into")
    try:
        if private and not folder.exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # (mkdir's mode is masked by the umask)
        else:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Refused(f"cannot create the folder {folder}: {err.strerror or err}") from None
    return folder


def private_file(path: Path) -> Path:
    """Create ``path`` (or take it as it is) with mode 0600 before anything is written into it: the file holds
    patient data, so only its owner may read it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    return path
