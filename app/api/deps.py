"""Typed dependencies of the route handlers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.errors import UnavailableError
from app.execution.dispatch import Dispatcher
from app.models import ApiToken
from app.schemas import MAX_ID
from app.services import tokens
from app.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API token from `ctxeval token create NAME`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_db(request: Request) -> Iterator[Session]:
    with Session(request.app.state.db, expire_on_commit=False) as session:
        yield session


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher = request.app.state.dispatcher
    if dispatcher is None:
        raise UnavailableError("run execution is not configured on this service")
    return dispatcher  # type: ignore[no-any-return]


IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a stored id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows to return")]

SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_db)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


def require_token(settings: SettingsDep, session: SessionDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiToken | None:
    """A valid bearer token when auth is required; a token given when optional must still be valid."""
    if credentials is None:
        if settings.auth_required:
            raise HTTPException(status_code=401, detail="an API token is required (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})
        return None
    record = tokens.authenticate(session, credentials.credentials)
    if record is None:
        raise HTTPException(status_code=401, detail="the API token is not valid",
                            headers={"WWW-Authenticate": "Bearer"})
    return record


TokenDep = Annotated[ApiToken | None, Depends(require_token)]
