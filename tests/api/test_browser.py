"""The pages in a real browser: a manager overrides one row and accepts the rest, then the key
worker who received a case signs in and sees it with its reasons.

Headless Chromium (Debian's `chromium` package) driven by Playwright's Python client; skipped
with the reason when either is missing. Screenshots of each page go to tests/_artifacts/.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

import uvicorn  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "_artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(app):
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture
def base_url(service):
    url, server, thread = _serve(service.app)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def models_url(models_service):
    url, server, thread = _serve(models_service.app)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def _sign_in(page, base_url: str, *, username: str, password: str) -> None:
    page.goto(f"{base_url}/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_manager_overrides_and_accepts_then_key_worker_sees_the_case(
    service, world, base_url, page
):
    manager, key_worker = world.users["manager"], world.users["keyworker"]
    _sign_in(page, base_url, username="manager", password=manager["password"])
    assert "/proposals/" in page.url
    assert page.get_by_role("heading", name=f"Proposal for {world.locality}").is_visible()
    _shot(page, "1-manager-proposal")

    proposal_id = page.url.rsplit("/", 1)[-1]
    rows = service.client.get(
        f"/api/proposals/{proposal_id}", headers=service.headers("manager")
    ).json()["rows"]
    # A household the key worker may take (no safeguarding need they lack), smallest case first.
    row = min(
        (
            r
            for r in rows
            if r["status"] == "assigned"
            and r["worker_id"] != key_worker["worker_id"]
            and "domestic_abuse" not in r["needs"]
        ),
        key=lambda r: (r["points"], r["position"]),
    )
    household_id = row["household_id"]
    # The proposal gave the key worker's room to other households: the manager first waitlists
    # those (through the API: the page's own form is exercised below), then gives this household
    # to the key worker; an override into room the proposal gave away is refused with the reason.
    for held in rows:
        if held["status"] == "assigned" and held["worker_id"] == key_worker["worker_id"]:
            waitlisted = service.client.post(
                f"/api/proposals/{proposal_id}/decisions",
                json={
                    "household_id": held["household_id"],
                    "version": held["version"],
                    "action": "waitlist",
                    "reason": "Make room",
                },
                headers=service.headers("manager"),
            )
            assert waitlisted.status_code == 200, waitlisted.text
    page.reload()
    form = page.locator(f"#row-{household_id} form")
    form.get_by_label("Give to another worker", exact=True).check()
    form.get_by_label("Key worker to give it to").select_option(key_worker["worker_id"])
    form.get_by_label("Reason (needed unless you accept)").fill("Already knows the family")
    form.get_by_role("button", name="Record decision").click()
    page.wait_for_load_state("load")
    assert page.get_by_text("Decision recorded.").is_visible()
    assert (
        page.locator(f"#row-{household_id}")
        .get_by_text(f"Changed to {key_worker['worker_id']}")
        .is_visible()
    )
    _shot(page, "2-manager-after-override")

    page.get_by_role("button", name="remaining rows as proposed").click()
    page.wait_for_load_state("load")
    _shot(page, "3-manager-after-accepting-the-rest")
    assert (
        page.get_by_role("button", name="remaining rows as proposed").count() == 0
        or page.get_by_text("could not be").is_visible()
    )

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state("load")
    _sign_in(page, base_url, username="keyworker", password=key_worker["password"])
    assert page.url.endswith("/caseload")
    link = page.get_by_role("link", name=household_id)
    assert link.is_visible()
    first_reason = row["reasons"][0] if row["reasons"] else "No single strong reason"
    assert page.locator("tr", has=link).get_by_text(first_reason).first.is_visible()
    _shot(page, "4-key-worker-caseload")

    link.click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", name=f"Household {household_id}").is_visible()
    assert page.get_by_role("heading", name="Timeline across agencies").is_visible()
    _shot(page, "5-key-worker-household")


def test_keyboard_users_can_skip_to_the_content(base_url, page):
    page.goto(f"{base_url}/signin")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to main content"


def test_every_other_page_renders_for_its_role(models_service, model_world, models_url, page):
    users = model_world.users
    visits = {
        "manager": [("/locality", "6-manager-locality"), ("/decisions", "7-manager-decisions")],
        "scientist": [("/models", "8-scientist-models")],
        "admin": [("/admin/users", "9-admin-users"), ("/admin/audit", "10-admin-audit")],
    }
    for username, pages in visits.items():
        _sign_in(page, models_url, username=username, password=users[username]["password"])
        for path, name in pages:
            response = page.goto(f"{models_url}{path}")
            assert response.status == 200, path
            assert page.locator("h1").first.is_visible()
            _shot(page, name)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_load_state("load")
    page.goto(f"{models_url}/docs")
    assert page.get_by_role("heading", name="GET /api/caseload").is_visible()
    _shot(page, "11-api-docs")
    page.goto(f"{models_url}/signin")
    _shot(page, "0-sign-in")
