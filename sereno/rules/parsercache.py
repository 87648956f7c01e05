"""Importing rule-engine quickly: its parser tables, kept in the user's cache directory.

rule-engine builds the LALR tables of its condition grammar with PLY every time it is imported,
which takes about half a second: more than Sereno needs for a hundred thousand events. PLY can
take the tables from a module instead. Sereno keeps them in `$XDG_CACHE_HOME/sereno/` (by
default `~/.cache/sereno/`), a file per installation of rule-engine, and puts them where PLY
looks before rule-engine is imported. PLY checks the tables' signature against the grammar and
builds them afresh when they differ, in which case the file is written anew: a stale file costs
time once, never correctness. A cache that cannot be read or written is skipped.

Importing this module does it: import it before rule-engine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# where PLY looks for the tables of rule-engine's parser (`rule_engine.parser.Parser`)
TABLES_MODULE = "rule_engine.parser.parsetab"
_TABLE_NAMES = ("_tabversion", "_lr_method", "_lr_signature", "_lr_action", "_lr_goto")
_PRODUCTIONS = "_lr_productions"


def import_rule_engine() -> ModuleType:
    """`import rule_engine`, with its parser tables from the cache when they are there."""
    if "rule_engine" in sys.modules:
        return sys.modules["rule_engine"]
    path = _tables_path()
    tables = _load(path) if path is not None else None
    if tables is not None:
        sys.modules[TABLES_MODULE] = tables
    try:
        import rule_engine  # noqa: PLC0415 (the point of this module)
    finally:
        sys.modules.pop(TABLES_MODULE, None)
    if path is not None and not _built_from(tables, rule_engine):
        _save(rule_engine, path)
    return rule_engine


def _tables_path() -> Path | None:
    spec = importlib.util.find_spec("rule_engine")
    if spec is None or spec.origin is None:
        return None
    installation = hashlib.sha256(spec.origin.encode()).hexdigest()[:16]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache, "sereno", f"rule-engine-tables-{installation}.marshal")


def _load(path: Path) -> ModuleType | None:
    try:
        values = marshal.loads(path.read_bytes())
        module = ModuleType(TABLES_MODULE)
        for name in (*_TABLE_NAMES, _PRODUCTIONS):
            setattr(module, name, values[name])
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None  # none yet, or damaged: rule-engine builds its tables as if there were none
    return module


def _built_from(tables: ModuleType | None, rule_engine: ModuleType) -> bool:
    """Whether rule-engine's parser took its tables from `tables` (their signature matched)."""
    parser = getattr(rule_engine.Rule.parser, "_parser", None)
    return tables is not None and getattr(parser, "action", None) is tables._lr_action


def _save(rule_engine: ModuleType, path: Path) -> None:
    """Have PLY build the tables once more and write them out, then keep them, atomically."""
    import tempfile  # noqa: PLC0415 (only when the tables are written, once)

    from rule_engine._vendor.ply import yacc  # noqa: PLC0415

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            yacc.yacc(  # type: ignore[no-untyped-call]
                module=rule_engine.Rule.parser,
                tabmodule="parsetab",
                outputdir=scratch,
                write_tables=True,
                debug=False,
                errorlog=yacc.NullLogger(),
            )
            written: dict[str, Any] = {}
            exec(Path(scratch, "parsetab.py").read_text(encoding="utf-8"), written)
            values = {name: written[name] for name in (*_TABLE_NAMES, _PRODUCTIONS)}
            Path(scratch, "tables").write_bytes(marshal.dumps(values))
            os.replace(Path(scratch, "tables"), path)
    except (OSError, KeyError, ValueError):
        pass  # no cache this time: a read-only home, say


import_rule_engine()
