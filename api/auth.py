"""Users, passwords, tokens and sign-in throttling.

- Passwords are stored only as argon2id hashes (argon2-cffi's RFC 9106 defaults), rehashed on
  sign-in when those defaults get stronger.
- A token (for the API's `Authorization: Bearer`, or the pages' session cookie) is 32 random
  bytes; only its SHA-256 is stored, so a copy of service.db holds no usable token. Tokens
  expire after a working day, and all of a user's tokens end when the user is disabled.
- Sign-in is throttled per username and per client address: after `max_failures` failures in
  `window_seconds`, further attempts get 429 with Retry-After, the pause doubling with each
  further failure up to `max_lock_seconds`. Unknown usernames cost the same work as known ones,
  so timing does not tell which accounts exist.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api import users_db
from api.access import KEY_WORKER, LOCALITY_MANAGER, Principal
from api.audit import AuditEntry, record_now
from api.database import ROLES, ServiceDB

API_TOKEN_SECONDS = 8 * 3600
SESSION_SECONDS = 8 * 3600
PASSWORD_MIN_LENGTH = 12
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
TOKEN_KINDS: tuple[str, ...] = ("api", "session")

_hasher = PasswordHasher()


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failed sign-ins are allowed before attempts are paused, and for how long."""

    max_failures: int = 5
    client_max_failures: int = 20
    window_seconds: float = 900.0
    base_lock_seconds: float = 30.0
    max_lock_seconds: float = 900.0


class WrongCredentials(Exception):
    """The username and password do not match an active account (401)."""


class SignInThrottled(Exception):
    """Too many failed sign-ins: try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} seconds")
        self.retry_after = retry_after


# --- users -------------------------------------------------------------------------------------


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username or ""):
        raise ValueError(
            "username must be 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str, *, username: str) -> str:
    """Refuse passwords a council would not accept: too short, or containing the username."""
    if len(password or "") < PASSWORD_MIN_LENGTH:
        raise ValueError(f"password must be at least {PASSWORD_MIN_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise ValueError("password must not contain the username")
    return password


def check_role_links(*, role: str, worker_id: str | None, locality: str | None) -> None:
    """Key workers need a worker id, managers a locality; other roles take neither."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == KEY_WORKER and not worker_id:
        raise ValueError("a key_worker needs --worker-id (their worker_id in the workers table)")
    if role == LOCALITY_MANAGER and not locality:
        raise ValueError("a locality_manager needs --locality")
    if role not in (KEY_WORKER, LOCALITY_MANAGER) and (worker_id or locality):
        raise ValueError(f"a {role} is not linked to a worker or a locality")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(
    db: ServiceDB,
    *,
    username: str,
    role: str,
    password: str,
    worker_id: str | None = None,
    locality: str | None = None,
    actor: str,
) -> dict:
    """Create a user (ValueError on a bad or taken username, weak password or wrong links)."""
    check_username(username)
    check_role_links(role=role, worker_id=worker_id, locality=locality)
    check_password(password, username=username)
    password_hash = hash_password(password)
    with db.write() as connection:
        if users_db.user_by_name(connection, username) is not None:
            raise ValueError(f"user {username!r} already exists")
        users_db.insert_user(
            connection,
            username=username,
            role=role,
            password_hash=password_hash,
            worker_id=worker_id,
            locality=locality,
        )
    _audit_user_change(db, actor=actor, action="user_added", username=username, role=role)
    return public_user(users_db.user_by_name(db.read(), username))


def set_password(db: ServiceDB, *, username: str, password: str, actor: str) -> None:
    """Replace a user's password and end their sessions and tokens."""
    check_password(password, username=username)
    password_hash = hash_password(password)
    with db.write() as connection:
        _require_user(connection, username)
        users_db.update_user(
            connection, username=username, values={"password_hash": password_hash, "active": 1}
        )
        users_db.delete_tokens(connection, username=username)
    _audit_user_change(db, actor=actor, action="user_changed", username=username, change="password")


def disable_user(db: ServiceDB, *, username: str, actor: str) -> None:
    """Stop a user signing in, and end their sessions and tokens at once."""
    with db.write() as connection:
        _require_user(connection, username)
        users_db.update_user(connection, username=username, values={"active": 0})
        users_db.delete_tokens(connection, username=username)
    _audit_user_change(db, actor=actor, action="user_changed", username=username, change="disabled")


def _require_user(connection, username: str) -> dict:
    user = users_db.user_by_name(connection, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    return user


def _audit_user_change(db: ServiceDB, *, actor: str, action: str, username: str, **detail) -> None:
    record_now(
        db,
        AuditEntry(
            actor=actor,
            role="operator",
            action=action,
            target=f"user:{username}",
            purpose="user administration",
            detail=detail,
        ),
    )


def public_user(user: dict) -> dict:
    """A user without the password hash."""
    return {name: value for name, value in user.items() if name != "password_hash"}


def principal_of(user: dict) -> Principal:
    return Principal(
        username=user["username"],
        role=user["role"],
        worker_id=user.get("worker_id"),
        locality=user.get("locality"),
    )


# --- signing in ---------------------------------------------------------------------------------


@functools.cache
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(
    db: ServiceDB,
    *,
    username: str,
    password: str,
    client: str,
    policy: ThrottlePolicy = ThrottlePolicy(),
) -> Principal | None:
    """The user if the password is right, None if not; SignInThrottled while paused."""
    keys = _throttle_keys(username=username, client=client)
    now = time.time()
    _raise_if_throttled(db, keys=keys, now=now)
    user = users_db.user_by_name(db.read(), username)
    valid = _verify(user["password_hash"] if user else _decoy_hash(), password)
    if not (valid and user is not None and user["active"]):
        _record_failure(db, keys=keys, now=now, policy=policy)
        return None
    with db.write() as connection:
        users_db.clear_failures(connection, keys["user"])
        if _hasher.check_needs_rehash(user["password_hash"]):
            users_db.update_user(
                connection, username=username, values={"password_hash": hash_password(password)}
            )
    return principal_of(user)


def _throttle_keys(*, username: str, client: str) -> dict[str, str]:
    return {"user": f"user:{(username or '').lower()}", "client": f"client:{client}"}


def _raise_if_throttled(db: ServiceDB, *, keys: dict[str, str], now: float) -> None:
    waits = [
        state["locked_until"] - now
        for key in keys.values()
        if (state := users_db.failure_state(db.read(), key)) is not None
    ]
    longest = max(waits, default=0.0)
    if longest > 0:
        raise SignInThrottled(retry_after=max(1, math.ceil(longest)))


def _record_failure(
    db: ServiceDB, *, keys: dict[str, str], now: float, policy: ThrottlePolicy
) -> None:
    limits = {"user": policy.max_failures, "client": policy.client_max_failures}
    with db.write() as connection:
        for name, key in keys.items():
            state = users_db.failure_state(connection, key)
            if state is None or now - state["first_at"] > policy.window_seconds:
                state = {"failures": 0, "first_at": now}
            failures = state["failures"] + 1
            excess = failures - limits[name]
            pause = (
                min(policy.base_lock_seconds * 2**excess, policy.max_lock_seconds)
                if excess >= 0
                else 0.0
            )
            users_db.save_failure_state(
                connection,
                throttle_key=key,
                failures=failures,
                first_at=state["first_at"],
                locked_until=now + pause,
            )


# --- tokens -------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(db: ServiceDB, *, principal: Principal, kind: str) -> tuple[str, str, int]:
    """A new token of `kind` for the user: (token, csrf secret, lifetime in seconds)."""
    if kind not in TOKEN_KINDS:
        raise ValueError(f"token kind must be one of {TOKEN_KINDS}")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    lifetime = SESSION_SECONDS if kind == "session" else API_TOKEN_SECONDS
    now = time.time()
    with db.write() as connection:
        users_db.delete_expired_tokens(connection, now=now)
        users_db.insert_token(
            connection,
            token_hash=_token_hash(token),
            username=principal.username,
            kind=kind,
            csrf=csrf,
            expires_at=now + lifetime,
        )
    return token, csrf, lifetime


def token_principal(db: ServiceDB, *, token: str, kind: str) -> tuple[Principal, str] | None:
    """The principal and CSRF secret of a live token, or None."""
    if not token or len(token) > 256:
        return None
    user = users_db.token_user(db.read(), token_hash=_token_hash(token), kind=kind, now=time.time())
    if user is None:
        return None
    return principal_of(user), user["csrf"]


def revoke_token(db: ServiceDB, *, token: str) -> None:
    with db.write() as connection:
        users_db.delete_tokens(connection, token_hash=_token_hash(token))


def same_secret(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF secret (False when either is missing)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
