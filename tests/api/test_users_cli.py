"""`rebalance users ...`: add (password from standard input), list, disable, set-password."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from api import auth, database, users_db
from api.cli.users import users_app

runner = CliRunner()


@pytest.fixture
def home(world, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(world.home, copy)
    return copy


def _run(home, *args, stdin=""):
    return runner.invoke(users_app, [*args, "--home", str(home)], input=stdin)


def test_add_reads_the_password_from_stdin_and_hashes_it(home, password):
    result = _run(
        home,
        "add",
        "--username",
        "dana",
        "--role",
        "locality_manager",
        "--locality",
        "Fenton",
        stdin=password + "\n",
    )
    assert result.exit_code == 0, result.output
    db = database.open_service_db(home)
    user = users_db.user_by_name(db.read(), "dana")
    assert user["role"] == "locality_manager" and user["locality"] == "Fenton"
    assert password not in user["password_hash"]
    assert auth.authenticate(db, username="dana", password=password, client="cli") is not None
    entry = db.read().execute("SELECT * FROM audit WHERE action = 'user_added'").fetchall()[-1]
    assert entry["target"] == "user:dana" and entry["actor"].startswith("cli:")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--role", "key_worker"], "worker-id"),
        (["--role", "key_worker", "--worker-id", "KW7777"], "not in the workers table"),
        (["--role", "locality_manager", "--locality", "Atlantis"], "not a known locality"),
        (["--role", "chief"], "role must be"),
    ],
)
def test_add_refuses_bad_links_with_a_clear_message(home, password, args, words):
    result = _run(home, "add", "--username", "erin", *args, stdin=password + "\n")
    assert result.exit_code == 2
    assert words in result.output
    assert "Traceback" not in result.output
    assert users_db.user_by_name(database.open_service_db(home).read(), "erin") is None


def test_add_refuses_a_weak_password_and_a_taken_name(home, password):
    weak = _run(home, "add", "--username", "fay", "--role", "admin", stdin="short\n")
    assert weak.exit_code == 2 and "at least 12" in weak.output
    taken = _run(home, "add", "--username", "admin", "--role", "admin", stdin=password + "\n")
    assert taken.exit_code == 2 and "already exists" in taken.output


def test_list_shows_users_without_secrets(home):
    result = _run(home, "list")
    assert result.exit_code == 0
    assert "manager" in result.output and "keyworker" in result.output
    assert "$argon2" not in result.output


def test_disable_and_set_password(home, password):
    db = database.open_service_db(home)
    assert _run(home, "disable", "--username", "manager2").exit_code == 0
    assert auth.authenticate(db, username="manager2", password=password, client="x") is None
    new = "a brand new passphrase"
    assert _run(home, "set-password", "--username", "manager2", stdin=new + "\n").exit_code == 0
    assert auth.authenticate(db, username="manager2", password=new, client="y") is not None
    assert _run(home, "disable", "--username", "ghost").exit_code == 2
