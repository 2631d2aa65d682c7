"""``/api/v1/auths``: sign up, sign in, the session user and API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from rag_pipeline.server.auth import (
    CurrentUser,
    authenticate,
    create_api_key,
    create_user,
    delete_api_keys,
)
from rag_pipeline.server.db import ApiKey, User

router = APIRouter(prefix="/api/v1/auths", tags=["auths"])

# Open WebUI answers sign-in with the user's permission set; ours is fixed.
_PERMISSIONS: dict[str, Any] = {
    "workspace": {"models": False, "knowledge": True, "prompts": False, "tools": False},
    "chat": {"file_upload": True, "controls": True},
    "features": {"api_keys": True},
}


class SignupForm(BaseModel):
    """Body of ``POST /signup``."""

    name: str = Field(min_length=1, max_length=255)
    email: str = Field(min_length=3, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class SigninForm(BaseModel):
    """Body of ``POST /signin``."""

    email: str
    password: str


def _session_answer(request: Request, user: User) -> dict[str, Any]:
    token, expires = request.app.state.tokens.issue(user.id)
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "email": user.email,
        "profile_image_url": f"/api/v1/users/{user.id}/profile/image",
        "token": token,
        "token_type": "Bearer",
        "expires_at": expires,
        "permissions": _PERMISSIONS,
    }


@router.post("/signup")
def signup(request: Request, form: SignupForm) -> dict[str, Any]:
    """Create an account; the first becomes admin, later ones need signups enabled."""
    state = request.app.state
    with state.db.session() as session:
        user = create_user(
            session,
            name=form.name,
            email=form.email,
            password=form.password,
            open_signup=state.settings.enable_signup,
        )
    return _session_answer(request, user)


@router.post("/signin")
def signin(request: Request, form: SigninForm) -> dict[str, Any]:
    """Exchange email and password for a session token."""
    with request.app.state.db.session() as session:
        user = authenticate(session, form.email, form.password)
        return _session_answer(request, user)


@router.get("/")
def session_user(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The signed-in user; like Open WebUI, an API key is not a human session."""
    if request.state.auth_method != "jwt":
        raise HTTPException(403, "A human session is required.")
    return _session_answer(request, user)


@router.post("/api_key")
def new_api_key(request: Request, user: CurrentUser) -> dict[str, str]:
    """Issue a new ``sk-`` key (the previous one stops working); shown once."""
    with request.app.state.db.session() as session:
        return {"api_key": create_api_key(session, user.id)}


@router.get("/api_key")
def show_api_key(request: Request, user: CurrentUser) -> dict[str, str]:
    """The current key, masked: only its hash is stored."""
    with request.app.state.db.session() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.user_id == user.id))
        if key is None:
            raise HTTPException(404, "No API key")
        return {"api_key": key.prefix + "…"}


@router.delete("/api_key")
def remove_api_key(request: Request, user: CurrentUser) -> bool:
    """Revoke the user's key."""
    with request.app.state.db.session() as session:
        return delete_api_keys(session, user.id)
