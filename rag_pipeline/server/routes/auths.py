"""``/api/v1/auths``: sign up, sign in, the session user and API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.db import User
from rag_pipeline.server.services import Accounts, AccountService

router = APIRouter(prefix="/api/v1/auths", tags=["auths"])


class SignupForm(BaseModel):
    """Body of ``POST /signup``."""

    name: str = Field(min_length=1, max_length=255)
    email: str = Field(min_length=3, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class SigninForm(BaseModel):
    """Body of ``POST /signin``."""

    email: str
    password: str


def _session_answer(accounts: AccountService, user: User) -> dict[str, Any]:
    token, expires = accounts.session_token(user)
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "email": user.email,
        "profile_image_url": f"/api/v1/users/{user.id}/profile/image",
        "token": token,
        "token_type": "Bearer",
        "expires_at": expires,
        "permissions": accounts.permissions(user),
    }


@router.post("/signup")
def signup(accounts: Accounts, form: SignupForm) -> dict[str, Any]:
    """Create an account; the first becomes admin, later ones need signups enabled."""
    user = accounts.signup(form.name, form.email, form.password)
    return _session_answer(accounts, user)


@router.post("/signin")
def signin(accounts: Accounts, form: SigninForm) -> dict[str, Any]:
    """Exchange email and password for a session token."""
    return _session_answer(accounts, accounts.signin(form.email, form.password))


@router.get("/")
def session_user(request: Request, accounts: Accounts, user: CurrentUser) -> dict[str, Any]:
    """The signed-in user; like Open WebUI, an API key is not a human session."""
    if request.state.auth_method != "jwt":
        raise HTTPException(403, "A human session is required.")
    return _session_answer(accounts, user)


@router.post("/api_key")
def new_api_key(accounts: Accounts, user: CurrentUser) -> dict[str, str]:
    """Issue a new ``sk-`` key (the previous one stops working); shown once."""
    return {"api_key": accounts.new_api_key(user)}


@router.get("/api_key")
def show_api_key(accounts: Accounts, user: CurrentUser) -> dict[str, str]:
    """The current key, masked: only its hash is stored."""
    return {"api_key": accounts.api_key_prefix(user) + "…"}


@router.delete("/api_key")
def remove_api_key(accounts: Accounts, user: CurrentUser) -> bool:
    """Revoke the user's key."""
    return accounts.delete_api_key(user)
