"""Users, sign-in tokens and sign-in failures in the service database (api.database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from api.database import as_dict, now_text


def insert_user(
    connection: sqlite3.Connection,
    *,
    username: str,
    role: str,
    password_hash: str,
    worker_id: str | None,
    locality: str | None,
) -> None:
    stamp = now_text()
    connection.execute(
        "INSERT INTO users (username, role, worker_id, locality, password_hash, active,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
        (username, role, worker_id, locality, password_hash, stamp, stamp),
    )


def update_user(
    connection: sqlite3.Connection, *, username: str, values: Mapping[str, object]
) -> None:
    allowed = {"role", "worker_id", "locality", "password_hash", "active"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"cannot update user column(s) {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in values)
    connection.execute(
        f"UPDATE users SET {assignments}, updated_at = ? WHERE username = ?",
        (*values.values(), now_text(), username),
    )


def user_by_name(connection: sqlite3.Connection, username: str) -> dict | None:
    row = connection.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    return as_dict(row)


def list_users(connection: sqlite3.Connection) -> list[dict]:
    rows = connection.execute(
        "SELECT username, role, worker_id, locality, active, created_at, updated_at"
        " FROM users ORDER BY role, username"
    )
    return [dict(row) for row in rows]


def insert_token(
    connection: sqlite3.Connection,
    *,
    token_hash: str,
    username: str,
    kind: str,
    csrf: str | None,
    expires_at: float,
) -> None:
    connection.execute(
        "INSERT INTO tokens (token_hash, username, kind, csrf, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, username, kind, csrf, now_text(), expires_at),
    )


def token_user(
    connection: sqlite3.Connection, *, token_hash: str, kind: str, now: float
) -> dict | None:
    """The active user a live token of this kind belongs to, with the token's CSRF secret."""
    row = connection.execute(
        "SELECT users.username, users.role, users.worker_id, users.locality, tokens.csrf"
        " FROM tokens JOIN users ON users.username = tokens.username"
        " WHERE tokens.token_hash = ? AND tokens.kind = ? AND tokens.expires_at > ?"
        " AND users.active = 1",
        (token_hash, kind, now),
    ).fetchone()
    return as_dict(row)


def delete_tokens(
    connection: sqlite3.Connection, *, token_hash: str | None = None, username: str | None = None
) -> None:
    if token_hash is not None:
        connection.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,))
    if username is not None:
        connection.execute("DELETE FROM tokens WHERE username = ?", (username,))


def delete_expired_tokens(connection: sqlite3.Connection, *, now: float) -> None:
    connection.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))


# --- sign-in throttling -------------------------------------------------------------------------


def failure_state(connection: sqlite3.Connection, throttle_key: str) -> dict | None:
    row = connection.execute(
        "SELECT * FROM sign_in_failures WHERE throttle_key = ?", (throttle_key,)
    ).fetchone()
    return as_dict(row)


def save_failure_state(
    connection: sqlite3.Connection,
    *,
    throttle_key: str,
    failures: int,
    first_at: float,
    locked_until: float,
) -> None:
    connection.execute(
        "INSERT INTO sign_in_failures (throttle_key, failures, first_at, locked_until)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (throttle_key) DO UPDATE SET"
        " failures = excluded.failures, first_at = excluded.first_at,"
        " locked_until = excluded.locked_until",
        (throttle_key, failures, first_at, locked_until),
    )


def clear_failures(connection: sqlite3.Connection, throttle_key: str) -> None:
    connection.execute("DELETE FROM sign_in_failures WHERE throttle_key = ?", (throttle_key,))
