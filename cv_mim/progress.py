"""Progress lines: one duration format for every ETA, and stage-level progress for multi-stage drivers.

A leaf utility (imports nothing of cv_mim).
"""

import logging
import math
import time

log = logging.getLogger("cv_mim")


def format_duration(seconds) -> str:
    """``"1h02m03s"``, ``"2m05s"`` or ``"?"`` for an unknown (non-finite) duration."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Stages:
    """Stage-level progress with elapsed time and an ETA from the stages' relative weights."""

    def __init__(self, weights, clock=time.time):
        self.weights = dict(weights)
        self.total = float(sum(self.weights.values()))
        self.done = 0.0
        self.clock = clock
        self.t0 = clock()

    def eta(self):
        """Seconds left, extrapolated from the finished stages' weight (None before 2% is done)."""
        frac = self.done / self.total if self.total else 0.0
        if frac <= 0.02:
            return None
        return (self.clock() - self.t0) / frac * (1 - frac)

    def start(self, name, detail=""):
        frac = self.done / self.total if self.total else 0.0
        log.info("[%3.0f%% | %s elapsed | ETA %s] %s %s", 100 * frac,
                 format_duration(self.clock() - self.t0), format_duration(self.eta()), name, detail)

    def finish(self, name):
        self.done += self.weights.get(name, 0)
