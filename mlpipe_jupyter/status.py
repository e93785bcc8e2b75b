"""The statuses of a run or step, as Azure ML SDK v1 names them, and the groups they fall in.

``Status`` is a ``str`` enum, so a status reads and compares as the text stored in the database and
returned by ``Run.get_status()`` ("Completed"), while code names them once."""
from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    def __str__(self) -> str:
        return self.value


ACTIVE_STATUSES = tuple(s.value for s in (Status.NOT_STARTED, Status.QUEUED, Status.PREPARING, Status.RUNNING,
                                          Status.FINALIZING, Status.CANCEL_REQUESTED))
FINAL_STATUSES = tuple(s.value for s in (Status.COMPLETED, Status.FAILED, Status.CANCELED))
