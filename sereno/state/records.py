"""Records kept by id in `sereno serve`'s state file, each written when it changes: the
silences and the acknowledgements. What a record is belongs to the stage that makes it; the
store keeps its bytes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from sereno.state.store import StoreError, connect, write_failure

R = TypeVar("R")


TABLES = ("silences", "acks")


class KeyedRecords(Generic[R]):
    """One of the `TABLES`: records of type `record`, by id."""

    def __init__(self, path: str | Path, table: str, record: type[R]) -> None:
        if table not in TABLES:
            raise ValueError(f"no table {table!r} of records by id")
        self._path, self._table = path, table
        self._connection = connect(path)
        self._decoder = msgspec.msgpack.Decoder(record)
        self._lock = threading.Lock()  # one connection, shared by the API's threads

    def load(self) -> list[R]:
        """Every record kept; raises `StoreError` if one cannot be read."""
        return list(self.load_by_id().values())

    def load_by_id(self) -> dict[str, R]:
        """Every record kept, by id; raises `StoreError` if one cannot be read."""
        try:
            with self._lock:
                rows = self._connection.execute(f"SELECT id, body FROM {self._table}").fetchall()
            return {record_id: self._decoder.decode(body) for record_id, body in rows}
        except (sqlite3.Error, msgspec.DecodeError, ValueError) as error:
            raise StoreError(f"the saved {self._table} cannot be read: {error}") from None

    def save(self, record_id: str, record: R) -> None:
        self._write(
            f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?)",
            [(record_id, msgspec.msgpack.encode(record))],
        )

    def delete(self, record_ids: Iterable[str]) -> None:
        self._write(f"DELETE FROM {self._table} WHERE id = ?", [(i,) for i in record_ids])

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
