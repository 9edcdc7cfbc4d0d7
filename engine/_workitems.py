"""A worklist item and the line it becomes on a date: plain data, with no protocol logic behind it.

The store keeps the items beside each patient's events and reads them back as :class:`WorkItem`; what the
items are follows from the protocol and the patient's records (:mod:`._worklist`), which the store does not
import.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from trialflow.documents._frozen import frozen

__all__ = ["HORIZON", "URGENCY", "Action", "ActionStatus", "Clock", "WorkItem", "sort_actions"]

ActionStatus = Literal["overdue", "due", "missed", "upcoming"]
URGENCY: dict[str, int] = {"overdue": 0, "due": 1, "missed": 2, "upcoming": 3}
HORIZON = 28  #: the worklist's default look-ahead, in days


@frozen
class Action:
    """One line of the worklist."""

    patient: str
    action: str
    visit: str | None
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date | None
    status: ActionStatus
    reason: str
    detail: str


Clock = Literal["window", "open_ended", "decision", "missed"]


@frozen
class WorkItem:
    """A worklist entry as it follows from the patient's records, whatever the day it is looked at.

    Its status on a date follows from its dates alone (:meth:`at`), which is what lets the store keep
    the items of every patient beside its events and answer the worklist without replaying anyone.
    ``opens`` is the first day it is shown (as upcoming) within the look-ahead horizon.

    - ``window`` (visits): upcoming, due until the target, overdue until the window closes, then missed
      (and it stays, missed, until a deviation is recorded for it or it is skipped);
    - ``missed`` (visits of a phase the patient has left undone): missed until a deviation is recorded;
    - ``open_ended`` (dispense, start, stop, complete): upcoming, due until the target, then overdue;
    - ``decision``: upcoming (waiting) until ``window_start``, due until ``window_end``, then overdue.
    """

    patient: str
    action: str
    visit: str | None
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date | None
    opens: dt.date
    clock: Clock
    reason: str
    detail: str
    waiting_detail: str | None = None

    def status(self, as_of: dt.date) -> ActionStatus:
        if self.clock == "missed":
            return "missed"
        if self.clock == "decision":
            if as_of < self.window_start:
                return "upcoming"
            return "due" if self.window_end is None or as_of <= self.window_end else "overdue"
        if as_of < self.window_start:
            return "upcoming"
        if as_of <= self.target_date:
            return "due"
        if self.clock == "open_ended" or self.window_end is None or as_of <= self.window_end:
            return "overdue"
        return "missed"

    def visible(self, as_of: dt.date, horizon: int) -> bool:
        """Shown once it opens within the horizon; a missed visit stays until someone deals with it."""
        return self.opens <= as_of + dt.timedelta(days=horizon)

    def at(self, as_of: dt.date) -> Action:
        status = self.status(as_of)
        detail = self.waiting_detail if status == "upcoming" and self.waiting_detail else self.detail
        return Action(self.patient, self.action, self.visit, self.target_date, self.window_start, self.window_end,
                      status, self.reason, detail)


def sort_actions(actions: list[Action]) -> list[Action]:
    """Most urgent first (overdue, due, missed, upcoming), then by date, patient, action and visit."""
    return sorted(actions, key=lambda a: (URGENCY[a.status], a.target_date, a.patient, a.action, a.visit or ""))
