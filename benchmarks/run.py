"""Time `sereno` against the decode floor, side by side in one run: `python benchmarks/run.py -h`.

For each file, four whole processes run in turn, several times each:

  floor     benchmarks/floor.py FILE              msgspec decoding the file into event structs
  json      sereno FILE --format json             alerts as JSON Lines, to /dev/null
  text      sereno FILE                           the classic alert lines, to /dev/null
  episodes  sereno FILE --format json --episodes  one JSON object per alert episode

and the medians, events per second, peak RSS and the ratio of each to the floor are printed:
of the medians, and of the fastest runs (noise only ever adds time).
The runs are interleaved, so that a busy moment of a shared machine falls on all of them
alike: quote the ratios, not the seconds. With several files, it also prints how the time
grows with the number of events (each against the first file).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
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


def commands(path: Path, rules: Path | None = None) -> dict[str, list[str]]:
    sereno = sereno_command() + (["-r", str(rules)] if rules is not None else [])
    return {
        "floor": [sys.executable, str(HERE / "floor.py"), str(path)],
        "json": [*sereno, str(path), "--format", "json", "--quiet"],
        "text": [*sereno, str(path), "--quiet"],
        "episodes": [*sereno, str(path), "--format", "json", "--episodes", "--quiet"],
    }


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


def measure(
    path: Path, repetitions: int, rules: Path | None = None
) -> tuple[int, dict[str, Measured]]:
    results = {name: Measured() for name in commands(path)}
    events = 0
    for _ in range(repetitions):
        for name, command in commands(path, rules).items():
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
    print(f"  {'':8} {header} {'min ratio':>9}")
    floor = results["floor"]
    for name, measured in results.items():
        median, fastest = measured.median, min(measured.seconds)
        print(
            f"  {name:8} {median:9.2f} {fastest:7.2f} {events / median:12,.0f}"
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
    args = parser.parse_args()
    rules = f", rules {args.rules}" if args.rules is not None else ""
    print(
        f"{' '.join(sereno_command())}{rules}, {os.cpu_count()} CPUs, {args.repetitions} runs each"
    )
    runs = []
    for path in args.files:
        events, results = measure(path, args.repetitions, args.rules)
        report(path, events, results)
        runs.append((path, events, results))
    if len(runs) > 1:
        report_scaling(runs)


if __name__ == "__main__":
    main()
