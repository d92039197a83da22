"""Throttling of repeated log messages per cause (no ROS import): the node logs each kind of bad input
the first time, then at most once per period with the number of repeats."""

from __future__ import annotations


class CauseThrottle:
    """Decides when a repeated problem is logged: the first time for each cause, then at most once per
    ``period_s`` per cause, reporting how many were not logged in between."""

    def __init__(self, period_s: float) -> None:
        self._period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def should_log(self, cause: str, now: float) -> tuple[bool, int]:
        """Return ``(log_it, suppressed_since_last_log)`` for one occurrence of ``cause`` at ``now``."""
        last = self._last.get(cause)
        if last is None or now - last >= self._period_s:
            suppressed = self._suppressed.pop(cause, 0)
            self._last[cause] = now
            return True, suppressed
        self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
        return False, 0
