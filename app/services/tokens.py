"""API tokens, one service for the API, the pages and the command line.

Tokens are stored as sha256 hashes (``crud``); the plain token is shown once, at creation.
"""

from __future__ import annotations

from sqlmodel import Session

from app import crud
from app.models import ApiToken


def authenticate(session: Session, token: str | None, *, touch: bool = True) -> ApiToken | None:
    """The stored token ``token`` is, or None; a match records its use (committed) unless ``touch`` is off."""
    token = (token or "").strip()
    if not token:
        return None
    record = crud.find_token(session, token=token)
    if record is not None and touch:
        crud.touch_token(session, record=record)
        session.commit()
    return record


def create(session: Session, name: str) -> tuple[ApiToken, str]:
    """A new token named ``name`` and its plain text (``ValueError`` when the name is taken)."""
    return crud.create_token(session, name=name)


def list_all(session: Session) -> list[ApiToken]:
    return crud.list_tokens(session)


def revoke(session: Session, name: str) -> bool:
    return crud.delete_token(session, name=name)
