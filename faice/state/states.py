"""A batch's states: CC-Agency's names, so that the REST API shows them as they are stored."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10
    from enum import Enum

    class StrEnum(str, Enum):
        """3.11's StrEnum: members are their values, also as text."""

        def __str__(self) -> str:
            return str(self.value)


class BatchState(StrEnum):
    """Where a batch is: registered, then scheduled on the node and processing, then one of the final three."""

    REGISTERED = "registered"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


STATES = tuple(BatchState)
FINAL_STATES = (BatchState.SUCCEEDED, BatchState.FAILED, BatchState.CANCELLED)
OPEN_STATES = tuple(s for s in STATES if s not in FINAL_STATES)
#: the states of a batch that holds a container slot and memory on the node
RUNNING_STATES = (BatchState.SCHEDULED, BatchState.PROCESSING)
