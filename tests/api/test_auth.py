"""Signing in: password hashes, bearer tokens, throttling, sessions and CSRF."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher

from api import auth, users_db


def _token(service, username, password):
    return service.client.post("/api/token", data={"username": username, "password": password})


def test_a_right_password_gives_a_working_bearer_token(service, world):
    user = world.users["manager"]
    response = _token(service, "manager", user["password"])
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["role"] == "locality_manager"
    me = service.client.get(
        "/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert me == {
        "username": "manager",
        "role": "locality_manager",
        "worker_id": None,
        "locality": world.locality,
    }
    entry = service.audit_rows(action="sign_in")[-1]
    assert entry["actor"] == "manager" and entry["outcome"] == "allowed"


@pytest.mark.parametrize("username", ["manager", "nobody"])
def test_wrong_credentials_are_401_whether_or_not_the_user_exists(service, username):
    response = _token(service, username, "not the password at all")
    assert response.status_code == 401
    assert response.json()["detail"] == "That username and password do not match an account."
    assert service.audit_rows(action="sign_in", outcome="refused")


def test_passwords_are_stored_as_argon2id_hashes_only(service, password):
    stored = users_db.user_by_name(service.db.read(), "manager2")
    assert stored["password_hash"].startswith("$argon2id$")
    assert password not in stored["password_hash"]
    assert PasswordHasher().verify(stored["password_hash"], password)


def test_tokens_are_stored_hashed(service, password):
    token = _token(service, "manager2", password).json()["access_token"]
    hashes = [row[0] for row in service.db.read().execute("SELECT token_hash FROM tokens")]
    assert token not in hashes and len(hashes) >= 1


def test_repeated_failures_are_throttled_with_retry_after(service, password):
    policy = auth.ThrottlePolicy()
    statuses = [
        _token(service, "manager2", "wrong password!").status_code
        for _ in range(policy.max_failures)
    ]
    assert statuses == [401] * policy.max_failures
    paused = _token(service, "manager2", password)
    assert paused.status_code == 429
    retry_after = int(paused.headers["Retry-After"])
    assert 0 < retry_after <= policy.base_lock_seconds
    # Another account is not affected (the client's own limit is higher).
    assert _token(service, "farmanager", password).status_code == 200


def test_a_success_clears_failures_and_pauses_double(service, password, monkeypatch):
    db, clock = service.db, [1_000.0]
    monkeypatch.setattr(auth.time, "time", lambda: clock[0])
    policy = auth.ThrottlePolicy(max_failures=5)
    for _ in range(3):
        assert (
            auth.authenticate(db, username="manager2", password="x", client="a", policy=policy)
            is None
        )
    assert users_db.failure_state(db.read(), "user:manager2")["failures"] == 3
    assert auth.authenticate(db, username="manager2", password=password, client="a", policy=policy)
    assert users_db.failure_state(db.read(), "user:manager2") is None

    strict = auth.ThrottlePolicy(max_failures=1, base_lock_seconds=10, max_lock_seconds=1000)
    auth.authenticate(db, username="farmanager", password="x", client="b", policy=strict)
    with pytest.raises(auth.SignInThrottled) as first:
        auth.authenticate(db, username="farmanager", password=password, client="b", policy=strict)
    clock[0] += 11
    auth.authenticate(db, username="farmanager", password="x", client="b", policy=strict)
    with pytest.raises(auth.SignInThrottled) as second:
        auth.authenticate(db, username="farmanager", password=password, client="b", policy=strict)
    assert (first.value.retry_after, second.value.retry_after) == (10, 20)


def test_revoked_and_disabled_tokens_stop_working(service, password):
    token = _token(service, "manager2", password).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert service.client.get("/api/me", headers=headers).status_code == 200
    assert service.client.delete("/api/token", headers=headers).status_code == 204
    assert service.client.get("/api/me", headers=headers).status_code == 401
    second = _token(service, "manager2", password).json()["access_token"]
    auth.disable_user(service.db, username="manager2", actor="tests")
    headers = {"Authorization": f"Bearer {second}"}
    assert service.client.get("/api/me", headers=headers).status_code == 401
    assert _token(service, "manager2", password).status_code == 401


@pytest.mark.parametrize(
    ("weak", "words"),
    [("short", "at least 12"), ("my-manager3-password", "username")],
)
def test_weak_passwords_are_refused(service, weak, words):
    with pytest.raises(ValueError, match=words):
        auth.add_user(service.db, username="manager3", role="admin", password=weak, actor="tests")
    assert users_db.user_by_name(service.db.read(), "manager3") is None


def test_role_links_are_checked(service, password):
    with pytest.raises(ValueError, match="worker-id"):
        auth.add_user(service.db, username="kw", role="key_worker", password=password, actor="t")
    with pytest.raises(ValueError, match="role must be"):
        auth.add_user(service.db, username="kw", role="boss", password=password, actor="t")


def _sign_in_form(client) -> str:
    page = client.get("/signin")
    assert page.status_code == 200
    return re.search(r'name="sign_in_secret" value="([^"]+)"', page.text).group(1)


def test_page_sign_in_sets_a_strict_http_only_session_cookie(service, world):
    client = service.client
    secret = _sign_in_form(client)
    response = client.post(
        "/signin",
        data={
            "username": "keyworker",
            "password": world.users["keyworker"]["password"],
            "sign_in_secret": secret,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/caseload"
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and "rebalance_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/caseload").status_code == 200


def test_page_sign_in_without_the_form_secret_is_refused(service, world):
    response = service.client.post(
        "/signin",
        data={
            "username": "manager",
            "password": world.users["manager"]["password"],
            "sign_in_secret": "forged",
        },
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert "rebalance_session" not in response.headers.get("set-cookie", "")


def test_pages_redirect_to_sign_in_and_back(service):
    response = service.client.get("/caseload", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/caseload"


def test_page_throttling_answers_429_with_retry_after(make_service):
    client = make_service(throttle=auth.ThrottlePolicy(max_failures=1)).client
    wrong = {"username": "admin", "password": "wrong!"}
    first = client.post("/signin", data=wrong | {"sign_in_secret": _sign_in_form(client)})
    assert first.status_code == 401
    second = client.post("/signin", data=wrong | {"sign_in_secret": _sign_in_form(client)})
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in second.text
