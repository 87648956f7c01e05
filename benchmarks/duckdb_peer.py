"""A peer for the benchmarks: Sereno's two default rules as one DuckDB query over the file.

`python benchmarks/duckdb_peer.py FILE [--out PATH] [--check SERENO_JSON]`

One SQL statement reads the JSON Lines events (`read_ndjson`, with the columns given, so no
type sniffing) and writes the alerts of both rules of `sereno/conf/rules.yaml` as JSON Lines
(`COPY ... TO ... (FORMAT JSON)`) to `--out`, by default /dev/null. It follows Sereno's rules
of a minute (minute = floor(timestamp / 60) * 60):

- for each (server, component) only the latest sample of the minute counts: the highest
  timestamp, and of equal ones the one later in the file (the scan's ordinality);
- a server is active in a minute by its latest event there over all components: of its latest
  samples, the newest; of equally new ones, that of the component that first came later in
  the minute (as `Window.activity` does);
- "Disk consumption exceeds 90%": each server whose latest `DiskUsedPercentage` sample has
  `value > 0.9` and `active` (the sample's own flag, as in the condition);
- "5 min load average exceeds 4.0": per service and minute, the active servers whose latest
  `Load5mAvg` sample has `value > 4.0` and `active`, an alert when they are more than half of
  the service's active servers (of any component); passive servers count on neither side.

Lateness is not modelled: every event counts in its minute, wherever it is in the file, where
Sereno drops an event that comes after its minute closed (30 s of allowed lateness past the
minute's end) and holds back events far ahead of the fleet. Files of `generate.py` have no
late event and none ahead of the fleet, so on them both find the same alerts; `--check` says
whether they do.

Server alerts carry kind, rule, severity, timestamp (the sample's), component, value, server
and service; majority alerts kind, rule, severity, timestamp (the minute's start), component,
value (the highest matching), service, threshold, matched and active (counts). The order of
the lines is by minute, rule, service and server; the bytes are not Sereno's.

`--check SERENO_JSON` compares the set of (rule, service, server or "", minute) with the
alerts in a file of `sereno FILE --format json`, and prints the counts and the differences.
Peak RSS and the time taken go to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

DISK_RULE = "Disk consumption exceeds 90%"
LOAD_RULE = "5 min load average exceeds 4.0"

COLUMNS = (
    "{server: 'VARCHAR', service: 'VARCHAR', component: 'VARCHAR', value: 'DOUBLE',"
    " timestamp: 'DOUBLE', active: 'BOOLEAN'}"
)

# $events is the file read, $out where the alerts go
QUERY = f"""
COPY (
WITH events AS (
    SELECT server, service, component, value, timestamp, active, ordinality AS seq,
           CAST(floor(timestamp / 60) * 60 AS BIGINT) AS minute
    FROM read_ndjson($events, columns = {COLUMNS}, format = 'newline_delimited')
         WITH ORDINALITY
),
-- the latest sample of each (server, component) in each minute, and when the pair first came
samples AS (
    SELECT server, component, minute,
           arg_max(
               {{'service': service, 'value': value, 'timestamp': timestamp, 'active': active}},
               (timestamp, seq)
           ) AS latest,
           min(seq) AS first_seq
    FROM events
    GROUP BY ALL
),
-- each (service, server)'s activity in each minute: its newest latest sample says
activity AS (
    SELECT latest.service AS service, server, minute,
           arg_max(latest.active, (latest.timestamp, first_seq)) AS active
    FROM samples
    GROUP BY ALL
),
active_counts AS (
    SELECT service, minute, count(*) FILTER (active) AS active
    FROM activity
    GROUP BY ALL
),
disk AS (
    SELECT 'server' AS kind, '{DISK_RULE}' AS rule, 'MEDIUM' AS severity,
           latest.timestamp AS timestamp, component, latest.value AS value, server,
           latest.service AS service, minute
    FROM samples
    WHERE component = 'DiskUsedPercentage' AND latest.value > 0.9 AND latest.active
),
load_matches AS (
    SELECT s.minute, s.latest.service AS service, s.server, s.latest.value AS value
    FROM samples AS s
    JOIN activity AS a
      ON a.service = s.latest.service AND a.server = s.server AND a.minute = s.minute
    WHERE s.component = 'Load5mAvg' AND a.active AND s.latest.value > 4.0 AND s.latest.active
),
majority AS (
    SELECT 'majority' AS kind, '{LOAD_RULE}' AS rule, 'HIGH' AS severity,
           m.minute AS timestamp, 'Load5mAvg' AS component, max(m.value) AS value,
           m.service, '4.0' AS threshold, count(*) AS matched, c.active, m.minute
    FROM load_matches AS m
    JOIN active_counts AS c ON c.service = m.service AND c.minute = m.minute
    GROUP BY m.minute, m.service, c.active
    HAVING count(*) * 2 > c.active
)
SELECT * EXCLUDE (minute) FROM (
    SELECT * FROM disk UNION ALL BY NAME SELECT * FROM majority
)
ORDER BY minute, rule DESC, service, server
) TO '$out' (FORMAT JSON)
"""
# rule DESC: the disk rule before the load rule, in the order of the rules file

AlertKey = tuple[str, str, str, int]


def run_query(events: Path, out: str, memory_limit: str, scratch: str) -> None:
    # a thread a core; past the memory limit DuckDB spills to `scratch` rather than growing
    # with the file. Without a limit, 1M events took about 550-600 MB and 1.3-2.2 s on 2 cores;
    # with 1GB, about 430-490 MB and 2.6-3.2 s (it frees buffers sooner)
    connection = duckdb.connect(
        config={
            "threads": os.cpu_count() or 1,
            "memory_limit": memory_limit,
            "temp_directory": scratch,
        }
    )
    # COPY's target cannot be a parameter: quote it as an SQL string
    target = out.replace("'", "''")
    connection.execute(QUERY.replace("$out", target), {"events": str(events)})
    connection.close()


def alert_keys(path: str) -> set[AlertKey]:
    """(rule, service, server or "", minute) of each alert in a JSON Lines file."""
    keys: set[AlertKey] = set()
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            if not line.strip():
                continue
            alert = json.loads(line)
            minute = int(alert["timestamp"] // 60 * 60)
            keys.add((alert["rule"], alert["service"], alert.get("server") or "", minute))
    return keys


def check(ours: str, sereno: str) -> bool:
    """Print how the alerts of `ours` and of Sereno's `sereno` compare; whether they agree."""
    mine, theirs = alert_keys(ours), alert_keys(sereno)
    for label, keys in (("duckdb", mine), ("sereno", theirs)):
        by_rule = ", ".join(
            f"{sum(1 for key in keys if key[0] == rule):,} {rule!r}"
            for rule in (DISK_RULE, LOAD_RULE)
        )
        print(f"{label}: {len(keys):,} alerts ({by_rule})")
    only_mine, only_theirs = sorted(mine - theirs), sorted(theirs - mine)
    print(
        f"in both: {len(mine & theirs):,}; only duckdb: {len(only_mine):,};"
        f" only sereno: {len(only_theirs):,}"
    )
    for label, listed in (("only duckdb", only_mine), ("only sereno", only_theirs)):
        for key in listed[:20]:
            print(f"  {label}: {key}")
        if len(listed) > 20:
            print(f"  {label}: ... {len(listed) - 20:,} more")
    return not only_mine and not only_theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("file", metavar="FILE", type=Path, help="JSON Lines events")
    parser.add_argument(
        "--out", default=os.devnull, help="where the alerts go (default: %(default)s)"
    )
    parser.add_argument(
        "--check",
        metavar="SERENO_JSON",
        help="compare the alerts with this output of `sereno FILE --format json`",
    )
    parser.add_argument(
        "--memory-limit",
        default="1GB",
        help="DuckDB's memory_limit, beyond which it spills to disk (default: %(default)s)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out
        if args.check is not None and out == os.devnull:
            out = str(Path(scratch) / "alerts.jsonl")
        run_query(args.file, out, args.memory_limit, scratch)
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"duckdb {duckdb.__version__}: {elapsed:.2f} s, peak RSS {peak:,.0f} MB",
            file=sys.stderr,
        )
        if args.check is not None and not check(out, args.check):
            sys.exit(1)


if __name__ == "__main__":
    main()
