"""Response cache keyed by the exact request: a re-run of the same spec costs no tokens."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from evals.domain import streaming_hash


def request_key(base_url: str, body: dict[str, Any]) -> str:
    """Identity of a request: the server and the exact body (model, messages, sampling, limits);
    the same digest as ``stable_hash`` of them, hashed without a second copy of a long prompt."""
    return streaming_hash([base_url.rstrip("/"), body])


class ResponseCache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryCache:
    def __init__(self) -> None:
        self._d: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return self._d.get(key)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self._d[key] = value

    def __len__(self) -> int:
        return len(self._d)


class SqliteCache:
    """A cache file for the CLI (the service keeps its cache in its own database)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._conn.commit()
        self._lock = threading.Lock()

    def _get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)",
                               (key, json.dumps(value)))
            self._conn.commit()

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await asyncio.to_thread(self._put, key, value)

    def close(self) -> None:
        self._conn.close()
