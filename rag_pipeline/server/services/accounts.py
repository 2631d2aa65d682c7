"""Accounts: sign-up, sign-in, session tokens and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rag_pipeline.errors import NotFoundError
from rag_pipeline.server.auth import (
    TokenIssuer,
    authenticate,
    create_api_key,
    create_user,
    delete_api_keys,
)
from rag_pipeline.server.db import ApiKey, Database, User


class AccountService:
    """Users and their credentials; the first user to sign up becomes the admin."""

    def __init__(
        self,
        database: Database,
        tokens: TokenIssuer,
        open_signup: bool,
        users_may_create_knowledge: bool = False,
    ) -> None:
        self.db = database
        self.tokens = tokens
        self.open_signup = open_signup
        self.users_may_create_knowledge = users_may_create_knowledge

    def permissions(self, user: User) -> dict[str, Any]:
        """What the user may do, in Open WebUI's shape (answered with a session)."""
        knowledge = user.role == "admin" or self.users_may_create_knowledge
        workspace = {"models": False, "knowledge": knowledge, "prompts": False, "tools": False}
        return {
            "workspace": workspace,
            "chat": {"file_upload": True, "controls": True},
            "features": {"api_keys": True},
        }

    def signup(self, name: str, email: str, password: str) -> User:
        """Create an account (later ones only while signups are open)."""
        with self.db.session() as session:
            return create_user(
                session, name=name, email=email, password=password, open_signup=self.open_signup
            )

    def signin(self, email: str, password: str) -> User:
        """The user these credentials prove; CredentialsError otherwise."""
        with self.db.session() as session:
            return authenticate(session, email, password)

    def session_token(self, user: User) -> tuple[str, int]:
        """A new session token for the user, and when it expires."""
        return self.tokens.issue(user.id)

    def new_api_key(self, user: User) -> str:
        """Issue a new ``sk-`` key (the previous one stops working)."""
        with self.db.session() as session:
            return create_api_key(session, user.id)

    def api_key_prefix(self, user: User) -> str:
        """The start of the user's key (only its hash is stored); NotFoundError if none."""
        with self.db.session() as session:
            key = session.scalar(select(ApiKey).where(ApiKey.user_id == user.id))
            if key is None:
                raise NotFoundError("No API key")
            return key.prefix

    def delete_api_key(self, user: User) -> bool:
        """Revoke the user's key; whether there was one."""
        with self.db.session() as session:
            return delete_api_keys(session, user.id)
