"""Python's cycle collector, tuned for Sereno's runs."""

from __future__ import annotations

import gc


def collect_less_often() -> None:
    """A run makes millions of short-lived containers, none of them in reference cycles that
    matter; each time they set off the cycle collector, it walks every long-lived object too.
    Set aside what start-up made, and collect a hundred times less often."""
    gc.freeze()
    gc.set_threshold(70_000, 20, 100)
