"""Study ids must be pseudonyms: refuse what looks like a name, a birth date or a national number."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["pseudonym_problem"]

_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")
_DATE_PATTERNS = (
    (re.compile(r"(?<!\d)(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})(?!\d)"), ("y", "m", "d")),
    (re.compile(r"(?<!\d)(\d{2})[-/.]?(\d{2})[-/.]?(\d{4})(?!\d)"), ("d", "m", "y")),
    (re.compile(r"(?<!\d)(\d{2})[-/.]?(\d{2})[-/.]?(\d{2})(?!\d)"), ("d", "m", "yy")),
    (re.compile(r"(?<!\d)(\d{2})[-/.]?(\d{2})[-/.]?(\d{2})(?!\d)"), ("m", "d", "yy")),
    (re.compile(r"(?<!\d)(\d{2})[-/.]?(\d{2})[-/.]?(\d{2})(?!\d)"), ("yy", "m", "d")),
)
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z]{4}\d{6,26}$", re.I)
_NATIONAL = (
    (re.compile(r"^\d{3}-?\d{2}-?\d{4}$"), "a US social security number"),
    (re.compile(r"^[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]$", re.I), "a UK national insurance number"),
    (re.compile(r"^\d{6}[-+A]\d{3}[0-9A-Y]$", re.I), "a Finnish personal identity code"),
    (re.compile(r"^\d{6}-?\d{4}$"), "a Nordic personal number"),
)


def _bsn(digits: str) -> bool:
    """Dutch citizen service number (BSN): 9 digits passing the 11-test."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0 and digits != "000000000"


def _plausible_date(parts: dict[str, str]) -> bool:
    this_year = dt.date.today().year
    if "y" in parts:
        years = [int(parts["y"])]
    else:  # a two-digit year: 19yy, or 20yy up to this year (120385 is 12 March 1985)
        years = [1900 + int(parts["yy"])] + ([2000 + int(parts["yy"])] if 2000 + int(parts["yy"]) <= this_year else [])
    for year in years:
        try:
            d = dt.date(year, int(parts["m"]), int(parts["d"]))
        except ValueError:
            continue
        if 1900 <= d.year <= this_year:
            return True
    return False


def pseudonym_problem(patient: str) -> str | None:
    """Why ``patient`` is not acceptable as a study id, or None."""
    if not _SHAPE.match(patient):
        return (f"study id {patient!r} must be 2-32 letters, digits, '-' or '_' (a pseudonym such as P-001), "
                "starting with a letter or digit")
    if not any(c.isdigit() for c in patient):
        return f"study id {patient!r} looks like a name: use a pseudonym with a number, such as P-001"
    digits = re.sub(r"\D", "", patient)
    # Checked before the other national patterns: a 9-digit BSN also has the shape of a US SSN.
    if _bsn(digits) and len(re.sub(r"[^0-9]", "", patient)) == len(patient.replace("-", "")):
        return f"study id {patient!r} looks like a Dutch citizen service number (BSN): use a pseudonym such as P-001"
    for pattern, what in _NATIONAL:
        if pattern.match(patient):
            return f"study id {patient!r} looks like {what}: use a pseudonym such as P-001"
    if _IBAN.match(patient.replace(" ", "")):
        return f"study id {patient!r} looks like a bank account number (IBAN): use a pseudonym such as P-001"
    for run in re.findall(r"\d{9,}", patient):
        if any(_bsn(run[i:i + 9]) for i in range(len(run) - 8)):
            return f"study id {patient!r} contains what looks like a Dutch citizen service number (BSN)"
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(patient):
            if _plausible_date(dict(zip(order, m.groups(), strict=True))):
                return f"study id {patient!r} contains what looks like a date of birth: use a pseudonym such as P-001"
    for word in re.findall(r"[A-Za-z]{5,}", patient):
        if re.search(r"[aeiouyAEIOUY]", word):
            return (f"study id {patient!r} contains {word!r}, which may be a name: use a pseudonym such as P-001 "
                    "(site codes of up to 4 letters are fine)")
    return None
