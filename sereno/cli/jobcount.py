"""How many jobs a run of `sereno FILE` takes, apart from the jobs themselves: a run of one
job never imports multiprocessing."""

from __future__ import annotations

import argparse
import os

from sereno.engine.shard import shares_by_service
from sereno.rules.rulefmt import RuleSet

MIN_BYTES_FOR_JOBS = 64 << 20  # smaller files are done before the other jobs would start
MAX_JOBS = 256


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def jobs_for(args: argparse.Namespace, ruleset: RuleSet) -> int:
    """How many jobs a run takes: as asked (by default one per core for a file of 64 MB or
    more); one for standard input, `--strict`, `--notices` (whose changes one process tells
    in one order), and rules that inhibit across services."""
    if args.file == "-" or args.strict or args.notices or not shares_by_service(ruleset):
        return 1
    if args.jobs is not None:
        return int(args.jobs)
    try:
        size = os.stat(args.file).st_size
    except OSError:
        return 1  # reading it says what is wrong
    return available_cores() if size >= MIN_BYTES_FOR_JOBS else 1
