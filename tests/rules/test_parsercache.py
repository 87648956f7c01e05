"""rule-engine's parser tables, cached in the user's cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import run_sereno

# Imports the conditions module under a profiler and says whether PLY built parser tables.
BUILT_TABLES = """
import cProfile, pstats
profile = cProfile.Profile()
profile.runcall(__import__, "sereno.rules.conditions")
functions = pstats.Stats(profile).stats
print(any(name == "lr_parse_table" for _, _, name in functions))
"""


def tables_built(cache: Path) -> bool:
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", BUILT_TABLES],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
        timeout=60,
    )
    assert result.stderr == ""
    return {"True\n": True, "False\n": False}[result.stdout]


def test_the_first_start_builds_and_keeps_the_tables_later_starts_load_them(
    tmp_path: Path,
) -> None:
    assert tables_built(tmp_path)
    [kept] = (tmp_path / "sereno").iterdir()
    assert kept.name.startswith("rule-engine-tables-")
    assert not tables_built(tmp_path)
    assert not tables_built(tmp_path)


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    assert tables_built(tmp_path)
    [kept] = (tmp_path / "sereno").iterdir()
    kept.write_bytes(b"not tables")
    assert tables_built(tmp_path)
    assert not tables_built(tmp_path)


def test_conditions_parse_alike_with_and_without_the_cache(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    without = run_sereno("check", env=env)
    with_cache = run_sereno("check", env=env)
    assert without.returncode == with_cache.returncode == 0
    assert without.stdout == with_cache.stdout
    assert "condition (compiled)" in with_cache.stdout


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = run_sereno("check", env={"XDG_CACHE_HOME": str(not_a_directory)})
    assert (result.returncode, result.stderr) == (0, "")
