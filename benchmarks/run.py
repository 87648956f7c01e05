"""Time `sereno` against the decode floor, side by side in one run: `python benchmarks/run.py -h`.

For each file, whole processes run in turn, several times each:

  floor        benchmarks/floor.py FILE              msgspec decoding the file into event structs
  json         sereno FILE --format json --jobs 1    alerts as JSON Lines, to /dev/null
  text         sereno FILE --jobs 1                  the classic alert lines, to /dev/null
  episodes     sereno FILE --format json --episodes --jobs 1
                                                     one JSON object per alert episode
  json-jN, text-jN, episodes-jN
               the same with --jobs N (N: run.py's --jobs, by default the number of CPUs)
  duckdb       benchmarks/duckdb_peer.py FILE        a peer: the default rules as one DuckDB
                                                     query (only if duckdb can be imported,
                                                     and not with -r)
  bound        benchmarks/bound.py FILE              the default rules written out by hand for
                                                     generated files: what pure Python costs
                                                     at the least (not with -r)

`sereno -h` is read once at the start: if it has no --jobs, the -jN rows are skipped and the
others run without --jobs 1. `--only NAMES` runs some of the rows (the floor always runs: the
ratios are to it). Then the medians, events per second, peak RSS and the ratio of each to the
floor are printed: of the medians, and of the fastest runs (noise only ever adds time).
Peak RSS is that of the largest single process of a run (`wait4`'s `ru_maxrss`, which for a
process with children is the largest of them or itself), not the sum over the processes of a
-jN run. The runs are interleaved, so that a busy moment of a shared machine falls on all of them
alike: quote the ratios, not the seconds. With several files, it also prints how the time
grows with the number of events (each against the first file).
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    peak_rss_kib: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def sereno_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("sereno")
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("sereno")
    return [found] if found else [sys.executable, "-m", "sereno"]


SERENO_ROWS = {
    "json": ["--format", "json", "--quiet"],
    "text": ["--quiet"],
    "episodes": ["--format", "json", "--episodes", "--quiet"],
}


@dataclass(frozen=True)
class Rows:
    """Which rows run, and how."""

    rules: Path | None = None
    jobs: int | None = None  # sereno's --jobs for the -jN rows; None: sereno has no --jobs
    duckdb: bool = False
    bound: bool = False
    only: frozenset[str] | None = None  # None: all

    def wanted(self, name: str) -> bool:
        return name == "floor" or self.only is None or name in self.only


def all_names(jobs: int) -> list[str]:
    """Every row there can be, with --jobs `jobs`."""
    return [
        "floor",
        *SERENO_ROWS,
        *(f"{name}-j{jobs}" for name in SERENO_ROWS),
        "duckdb",
        "bound",
    ]


def compile_bytecode() -> None:
    """Compile sereno's modules to bytecode, as `pip install` does: an editable install (or
    PYTHONDONTWRITEBYTECODE) would otherwise have every run compile them again, a tenth of a
    second that no user pays."""
    spec = importlib.util.find_spec("sereno")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            compileall.compile_dir(location, quiet=1)


def sereno_has_jobs() -> bool:
    """Whether the sereno run here takes --jobs (it says so in its help)."""
    result = subprocess.run([*sereno_command(), "-h"], capture_output=True, text=True, check=False)
    return "--jobs" in result.stdout + result.stderr


def duckdb_installed() -> bool:
    try:
        importlib.import_module("duckdb")
    except ImportError:
        return False
    return True


def commands(path: Path, rows: Rows) -> dict[str, list[str]]:
    sereno = sereno_command() + (["-r", str(rows.rules)] if rows.rules is not None else [])
    single = ["--jobs", "1"] if rows.jobs is not None else []
    found = {"floor": [sys.executable, str(HERE / "floor.py"), str(path)]}
    for name, options in SERENO_ROWS.items():
        found[name] = [*sereno, str(path), *options, *single]
    if rows.jobs is not None:
        for name, options in SERENO_ROWS.items():
            found[f"{name}-j{rows.jobs}"] = [*sereno, str(path), *options, "--jobs", str(rows.jobs)]
    if rows.duckdb:
        found["duckdb"] = [sys.executable, str(HERE / "duckdb_peer.py"), str(path)]
    if rows.bound:
        found["bound"] = [sys.executable, str(HERE / "bound.py"), str(path)]
    return {name: command for name, command in found.items() if rows.wanted(name)}


def run_once(command: list[str]) -> tuple[float, int, bytes]:
    """Wall time, peak RSS (KiB) and standard output of one run of `command`."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=devnull)
        assert process.stdout is not None
        output = bytearray()
        while block := process.stdout.read(1 << 16):
            if len(output) < 64:
                output += block[:64]
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)}: exit status {process.returncode}")
    return elapsed, usage.ru_maxrss, bytes(output)


def measure(path: Path, repetitions: int, rows: Rows) -> tuple[int, dict[str, Measured]]:
    to_run = commands(path, rows)
    results = {name: Measured() for name in to_run}
    events = 0
    for _ in range(repetitions):
        for name, command in to_run.items():
            seconds, rss, output = run_once(command)
            results[name].seconds.append(seconds)
            results[name].peak_rss_kib = max(results[name].peak_rss_kib, rss)
            if name == "floor":
                events = int(output.split()[0])
    return events, results


def report(path: Path, events: int, results: dict[str, Measured]) -> None:
    size = path.stat().st_size / 1e6
    print(f"\n{path.name}: {events:,} events, {size:,.0f} MB")
    header = f"{'median s':>9} {'min s':>7} {'events/s':>12} {'peak RSS':>9} {'ratio':>6}"
    print(f"  {'':11} {header} {'min ratio':>9}")
    floor = results["floor"]
    for name, measured in results.items():
        median, fastest = measured.median, min(measured.seconds)
        print(
            f"  {name:11} {median:9.2f} {fastest:7.2f} {events / median:12,.0f}"
            f" {measured.peak_rss_kib / 1024:6.0f} MB {median / floor.median:6.2f}"
            f" {fastest / min(floor.seconds):9.2f}"
        )


def report_scaling(runs: list[tuple[Path, int, dict[str, Measured]]]) -> None:
    (_, base_events, base), *rest = runs
    print("\nscaling against the first file (time ratio / events ratio):")
    for path, events, results in rest:
        times = ", ".join(
            f"{name} {results[name].median / base[name].median:.2f}x" for name in results
        )
        print(f"  {path.name}: {events / base_events:.1f}x the events, {times}")


def chosen_rows(args: argparse.Namespace, only: frozenset[str] | None) -> Rows:
    """The rows to run, saying why any asked for cannot."""
    rows = Rows(rules=args.rules, only=only)
    sereno_rows = [*SERENO_ROWS, *(f"{name}-j{args.jobs}" for name in SERENO_ROWS)]
    if any(rows.wanted(name) for name in sereno_rows):
        if sereno_has_jobs():
            rows = replace(rows, jobs=args.jobs)
        else:
            print("sereno has no --jobs: the -jN rows skipped, the others run without --jobs 1")
    if rows.wanted("duckdb"):
        if args.rules is not None:
            print("duckdb: computes the packaged rules only, skipped with -r")
        elif not duckdb_installed():
            print("duckdb: not installed (pip install duckdb), skipped")
        else:
            rows = replace(rows, duckdb=True)
    if rows.wanted("bound"):
        if args.rules is not None:
            print("bound: the packaged rules only, skipped with -r")
        else:
            rows = replace(rows, bound=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        epilog="Make files with benchmarks/generate.py.",
    )
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="JSON Lines events")
    parser.add_argument("-n", "--repetitions", type=int, default=5)
    parser.add_argument(
        "-r", "--rules", type=Path, help="the rules file sereno runs (default: the packaged one)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="sereno's --jobs in the -jN rows (default: the number of CPUs, %(default)s)",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="run only these rows, a comma list (e.g. json,duckdb); the floor always runs",
    )
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    only = None
    if args.only is not None:
        only = frozenset(name.strip() for name in args.only.split(",") if name.strip())
        unknown = only.difference(all_names(args.jobs))
        if unknown:
            parser.error(
                f"--only: no row {', '.join(sorted(unknown))}"
                f" (rows: {', '.join(all_names(args.jobs))})"
            )
    rows = chosen_rows(args, only)
    compile_bytecode()
    rules = f", rules {args.rules}" if args.rules is not None else ""
    jobs = f", --jobs {rows.jobs} in the -j{rows.jobs} rows" if rows.jobs is not None else ""
    print(
        f"{' '.join(sereno_command())}{rules}{jobs}, {os.cpu_count()} CPUs,"
        f" {args.repetitions} runs each"
    )
    runs = []
    for path in args.files:
        events, results = measure(path, args.repetitions, rows)
        report(path, events, results)
        runs.append((path, events, results))
    if len(runs) > 1:
        report_scaling(runs)


if __name__ == "__main__":
    main()
