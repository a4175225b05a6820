"""The engine's response cache kept in the app database, shared by every process of a deployment."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from app import crud
from app.db import session_scope


class DbResponseCache:
    """``evals.runner.ResponseCache`` over the ``response_cache`` table (keyed by the exact request)."""

    def __init__(self, db: DbEngine) -> None:
        self._db = db

    def _get(self, key: str) -> dict[str, Any] | None:
        with session_scope(self._db) as session:
            return crud.cache_get(session, key=key)

    def _put(self, key: str, value: dict[str, Any]) -> None:
        with session_scope(self._db) as session:
            crud.cache_put(session, key=key, value=value)

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await asyncio.to_thread(self._put, key, value)
