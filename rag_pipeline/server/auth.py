"""Passwords, JWTs, ``sk-`` API keys and the dependency that turns a Bearer token into a user."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rag_pipeline.errors import AuthError, ConfigError, CredentialsError, PermissionDeniedError
from rag_pipeline.server.db import FIRST_USER, ApiKey, Claim, Database, User, now

API_KEY_PREFIX = "sk-"
_bearer = HTTPBearer(auto_error=False)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    """Return the argon2 hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Return whether ``password`` matches the stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def key_digest(api_key: str) -> str:
    """Return the SHA-256 an API key is stored as (keys are random, so no salt is needed)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


class TokenIssuer:
    """Issue and check the server's HS256 session tokens."""

    def __init__(self, secret: str, expires_seconds: int) -> None:
        self._secret = secret
        self.expires_seconds = expires_seconds

    def issue(self, user_id: str) -> tuple[str, int]:
        """Return a signed token for a user and its expiry (epoch seconds)."""
        issued = int(time.time())
        expires = issued + self.expires_seconds
        claims = {"id": user_id, "iat": issued, "exp": expires, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires

    def user_id(self, token: str) -> str:
        """Return the user id a valid token names, or raise AuthError."""
        try:
            # A token without an expiry would be valid forever: refuse it.
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp"]}
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        user_id = claims.get("id")
        if not isinstance(user_id, str):
            raise AuthError("invalid token: no user id")
        return user_id


def _claim(session: Session, name: str, user_id: str) -> bool:
    """Insert the claim ``name`` unless it exists; return whether this call inserted it."""
    table = Claim.__table__
    values = {"name": name, "user_id": user_id, "created_at": now()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql_insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the two databases we support are above
        raise ConfigError(f"unsupported database dialect {dialect!r}")
    # RETURNING, not rowcount: drivers report rowcount for this statement differently.
    return session.scalar(statement.returning(table.c.name)) is not None


def create_user(
    session: Session,
    *,
    name: str,
    email: str,
    password: str,
    role: str | None = None,
    open_signup: bool = True,
) -> User:
    """Create a user; the first user of a server becomes its admin.

    Raises CredentialsError for a taken e-mail, PermissionDeniedError when the server already has
    its first user and ``open_signup`` is false.
    """
    email = email.strip().lower()
    password_hash = hash_password(password)  # slow: done before the transaction writes
    user_id = str(uuid.uuid4())
    # The claim is the transaction's first statement, a write: SQLite takes its write lock
    # here (waiting its turn) instead of failing a read-then-write upgrade under contention.
    first = _claim(session, FIRST_USER, user_id)
    if not first and not open_signup:
        raise PermissionDeniedError("Sign up is disabled on this server")
    taken = CredentialsError(f"a user with email {email!r} already exists")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise taken
    user = User(
        id=user_id,
        name=name,
        email=email,
        role=role or ("admin" if first else "user"),
        password_hash=password_hash,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the same e-mail committed by a concurrent signup
        raise taken from None
    return user


def user_by_email(session: Session, email: str) -> User | None:
    """Return the user with this e-mail (case and spaces as sign-in ignores them), or None."""
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the user with these credentials, or raise CredentialsError."""
    user = user_by_email(session, email)
    # An unknown e-mail costs one hash check too, so timing does not tell who has an account.
    valid = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid:
        raise CredentialsError("The email or password provided is incorrect.")
    return user


def create_api_key(session: Session, user_id: str) -> str:
    """Issue a new API key for a user, replacing the previous one; return it in clear once."""
    delete_api_keys(session, user_id)
    key = API_KEY_PREFIX + secrets.token_hex(16)
    session.add(ApiKey(key_hash=key_digest(key), user_id=user_id, prefix=key[:7]))
    session.flush()
    return key


def delete_api_keys(session: Session, user_id: str) -> bool:
    """Delete a user's API keys; return whether there was one."""
    keys = session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)).all()
    for key in keys:
        session.delete(key)
    return bool(keys)


def user_for_token(database: Database, issuer: TokenIssuer, token: str) -> tuple[User, str]:
    """Return the user a JWT or API key belongs to and how it was proven ("jwt" or "api_key")."""
    with database.session() as session:
        if token.startswith(API_KEY_PREFIX):
            key = session.get(ApiKey, key_digest(token))
            user = session.get(User, key.user_id) if key is not None else None
            method = "api_key"
        else:
            user = session.get(User, issuer.user_id(token))
            method = "jwt"
        if user is None:
            raise AuthError("invalid token")
        session.expunge(user)
        return user, method


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The signed-in user, from ``Authorization: Bearer`` (a JWT or an API key); else 401."""
    # The request guard has already checked the token, before the body was read.
    checked = getattr(request.state, "user", None)
    if checked is not None:
        return checked
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    state = request.app.state
    try:
        user, method = user_for_token(state.db, state.tokens, credentials.credentials)
    except AuthError:
        raise HTTPException(
            401, "Invalid token or API key", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    request.state.auth_method = method
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def user_summary(user: User) -> dict[str, Any]:
    """The short user object Open WebUI embeds in lists."""
    return {"id": user.id, "name": user.name, "role": user.role, "email": user.email}
