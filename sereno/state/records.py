"""Records kept by id in `sereno serve`'s state file, each written when it changes: the
silences. What a record is belongs to the stage that makes it; the store keeps its bytes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from sereno.state.store import StoreError, connect, write_failure

R = TypeVar("R")


class KeyedRecords(Generic[R]):
    """The `silences` table: records of type `record`, by id."""

    def __init__(self, path: str | Path, record: type[R]) -> None:
        self._path = path
        self._connection = connect(path)
        self._decoder = msgspec.msgpack.Decoder(record)
        self._lock = threading.Lock()  # one connection, shared by the API's threads

    def load(self) -> list[R]:
        """Every record kept; raises `StoreError` if one cannot be read."""
        try:
            with self._lock:
                rows = self._connection.execute("SELECT id, body FROM silences").fetchall()
            return [self._decoder.decode(body) for _, body in rows]
        except (sqlite3.Error, msgspec.DecodeError, ValueError) as error:
            raise StoreError(f"the saved silences cannot be read: {error}") from None

    def save(self, record_id: str, record: R) -> None:
        self._write(
            "INSERT OR REPLACE INTO silences VALUES (?, ?)",
            [(record_id, msgspec.msgpack.encode(record))],
        )

    def delete(self, record_ids: Iterable[str]) -> None:
        self._write("DELETE FROM silences WHERE id = ?", [(i,) for i in record_ids])

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        try:
            with self._lock:
                self._connection.executemany(sql, rows)
        except sqlite3.Error as error:
            raise StoreError(
                f"cannot save the silences: {write_failure(self._path, error)}"
            ) from None

    def close(self) -> None:
        self._connection.close()
