"""Service speed: household pages under 50 concurrent clients; a locality's proposal via the API.

    .venv/bin/python bench/bench_service.py                 # builds (once) a 110k-household world
    .venv/bin/python bench/bench_service.py --home .rebalance   # or uses a home with a weekly run

The service runs in its own process(es) (uvicorn on 127.0.0.1, a free port, --workers of them)
exactly as `rebalance serve` runs it. The load comes from one more process, so that its CPU is
counted apart from the service's: 50 asyncio clients, each on one keep-alive connection, writing
plain HTTP/1.1 requests (a lean client: httpx spends ~1.5 ms of CPU per request, as much as the
service, and on 2 shared cores it would measure itself). Each client signs in as the manager of
a locality and reads random households of that locality (all in scope, so every answer should
be 200), through the JSON API and as HTML pages. Every read is audited, as in production. The
CPU seconds used by the service's processes and by the load process are printed per phase.
Two loads per kind of read:

- people: 50 concurrent clients, each reading a page, then pausing (exponential, mean --think
  seconds, default 1) before the next, as staff at their desks do. Target: p95 under 50 ms, no
  errors.
- back to back: the same 50 clients with no pause at all (each sends its next read as soon as
  the last is answered): the strict reading of the target, p95 under 50 ms with 50 requests
  always in flight, and the service's capacity (requests per second). Run twice: the first
  run's reads are mostly a household's first read this week (its body is made then), the
  second draws the same households again (kept bodies).

Then a locality's proposal through POST /api/proposals (target under 5 s).

--fast-path on|off|both (default both) says whether the service answers household reads with
its `HouseholdReads` middleware (on, as `rebalance serve` does) or through the ordinary routes
(off: the app built with `create_app(..., household_fast_path=False)`); with both, the same run
measures one service and then the other, on the same world and published week. --no-paced
leaves out the paced phases.

Without --home, a world is built in --work (default .rebalance/bench/service-<N>) on first use:
the synthetic city, ingested, a model fitted with quick settings, two weekly score files and the
week's proposal, all with the project's own functions. Later runs reuse it. Either way the week's
household records are published first, as the weekly job does (`rebalance score` publishes);
the time this takes is printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
from _http_load import load_in_own_process, process_cpu_seconds, report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The project's packages are imported inside the functions that use them: the load generator
# runs each phase in a spawned process (bench/_http_load.py), which imports this module again,
# and the packages (models, allocation, the web app...) took 30-40 s of a loaded 2-core machine
# to import there.

BENCH_PASSWORD = "bench passphrase for managers"
CITY_END = date(2026, 11, 15)


def build_world(home: Path, *, households: int, seed: int) -> None:
    """City -> store -> quick model -> two weeks of scores -> this week's proposal."""
    from allocation import propose_allocation, write_proposal
    from experiments.city import generate_city, write_city
    from features.ingest import ingest_folder
    from features.store import Store
    from models import (
        ChampionModel,
        TrainSettings,
        fit_and_evaluate,
        score_households,
        write_scores,
    )

    started = time.perf_counter()
    city = generate_city(households=households, seed=seed, end=CITY_END)
    write_city(city, home / "extract")
    ingest_folder(home / "extract", home=home)
    tables = Store(home).read_tables()
    print(f"  city and ingest: {time.perf_counter() - started:.0f} s", flush=True)
    quick = TrainSettings(folds=1, history_dates=2, n_estimators=60, num_threads=2)
    outcome = fit_and_evaluate(tables=tables, as_of=CITY_END, settings=quick)
    model = ChampionModel(outcome.model, "household-escalation", "bench", "bench", 26)
    as_of = pd.Timestamp(CITY_END)
    for when in (as_of - pd.Timedelta(days=7), as_of):
        scores = score_households(tables=tables, as_of=when, model=model)
        write_scores(scores, home / "weeks" / str(when.date()) / "scores.csv")
    proposal = propose_allocation(scores=scores, workers=tables["workers"], cases=tables["cases"])
    write_proposal(proposal, out=home / "weeks" / str(as_of.date()) / "proposal.csv")
    print(f"  world built in {time.perf_counter() - started:.0f} s", flush=True)


def publish(home: Path) -> None:
    """The weekly job's last step: every household's record made once (api.published)."""
    from api import pipeline
    from api.settings import load_settings

    settings = load_settings(home=home)
    as_of = max(path.name for path in (home / "weeks").iterdir())
    started, cpu_started = time.perf_counter(), time.process_time()
    path, made = pipeline.publish_week(settings, as_of=as_of)
    if made:
        print(
            f"published {made:,} household records in {time.perf_counter() - started:.1f} s "
            f"(this process {time.process_time() - cpu_started:.1f} s CPU, plus its 2 forked "
            f"makers): {path.stat().st_size / 1e6:.0f} MB",
            flush=True,
        )
    else:
        print(f"household records already published: {path}", flush=True)


def managers(home: Path) -> dict[str, str]:
    """One manager per locality (username -> locality), created if missing."""
    from api import auth, database, users_db
    from features.store import Store

    db = database.open_service_db(home)
    localities = sorted(
        Store(home).read_table("households", columns=["locality"])["locality"].unique()
    )
    users = {}
    for number, locality in enumerate(localities):
        username = f"bench-manager-{number}"
        if users_db.user_by_name(db.read(), username) is None:
            auth.add_user(
                db,
                username=username,
                role="locality_manager",
                password=BENCH_PASSWORD,
                locality=str(locality),
                actor="bench",
            )
        users[username] = str(locality)
    return users


def household_ids(home: Path) -> dict[str, list[str]]:
    weeks = sorted((home / "weeks").glob("*/scores.csv"))
    scores = pd.read_csv(weeks[-1], usecols=["household_id", "locality"], dtype=str)
    return {
        locality: group.tolist() for locality, group in scores.groupby("locality")["household_id"]
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_without_fast_path():
    """The service as `rebalance serve` builds it, without the HouseholdReads middleware
    (uvicorn's factory in each worker of a --fast-path off run)."""
    from api.app import create_app
    from api.settings import load_settings

    return create_app(load_settings(), household_fast_path=False)


def start_server(home: Path, port: int, *, workers: int, fast_path: bool) -> subprocess.Popen:
    from api.settings import load_settings

    if fast_path:
        code = (
            "from api.app import serve; from api.settings import load_settings; "
            f"serve(load_settings(home={str(home)!r}), host='127.0.0.1', port={port}, "
            f"workers={workers})"
        )
    else:  # what api.app.serve does, with this module's factory
        code = (
            "import uvicorn; "
            f"uvicorn.run('bench_service:app_without_fast_path', factory=True, workers={workers}, "
            f"host='127.0.0.1', port={port}, log_level='warning', access_log=False, "
            "server_header=False)"
        )
    settings = load_settings(home=home)
    environment = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
        "REBALANCE_HOME": str(settings.home),
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
    }
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=environment)


def wait_until_up(base_url: str, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/signin", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the service did not start")


def wait_until_loaded(base_url: str, *, headers: dict, path: str, seconds: float) -> float:
    """Seconds until household reads on fresh connections (any worker) are all quick."""
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        timings = []
        for _ in range(12):  # fresh connections: each may land on another worker
            begun = time.perf_counter()
            httpx.get(base_url + path, headers=headers, timeout=300).raise_for_status()
            timings.append(time.perf_counter() - begun)
        if max(timings) < 0.5:
            return time.perf_counter() - started
    raise RuntimeError("the service did not load the week")


def token(base_url: str, username: str) -> str:
    response = httpx.post(
        f"{base_url}/api/token", data={"username": username, "password": BENCH_PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]


def session_cookie(base_url: str, username: str) -> str:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        form = client.get("/signin").text
        secret = form.split('name="sign_in_secret" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/signin",
            data={"username": username, "password": BENCH_PASSWORD, "sign_in_secret": secret},
        )
        return client.cookies["rebalance_session"]


def clients_for(
    base_url: str, users: dict[str, str], ids: dict[str, list[str]], *, count: int, pages: bool
) -> list[dict]:
    prefix = "/households/" if pages else "/api/households/"
    credentials = {
        username: (
            f"cookie: rebalance_session={session_cookie(base_url, username)}\r\n"
            if pages
            else f"authorization: Bearer {token(base_url, username)}\r\n"
        )
        for username in users
    }
    names = sorted(users)
    return [
        {
            "headers": credentials[names[number % len(names)]],
            "paths": [prefix + household for household in ids[users[names[number % len(names)]]]],
        }
        for number in range(count)
    ]


def time_proposals(
    base_url: str, users: dict[str, str], ids: dict[str, list[str]], *, runs: int
) -> None:
    largest = max(users, key=lambda username: len(ids[users[username]]))
    headers = {"Authorization": f"Bearer {token(base_url, largest)}"}
    for run in range(runs):
        started = time.perf_counter()
        response = httpx.post(f"{base_url}/api/proposals", json={}, headers=headers, timeout=120)
        seconds = time.perf_counter() - started
        response.raise_for_status()
        body = response.json()
        verdict = "ok" if seconds < 5 else "MISSED"
        print(
            f"proposal for {users[largest]} via POST /api/proposals (run {run + 1}): "
            f"{seconds:.2f} s, {len(body['rows'])} candidates, solver {body['summary']['status']}"
            f"  [{verdict}: < 5 s]",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="A REBALANCE_HOME with a weekly run.")
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="Where to build the world without --home.")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="Per client, paced phases.")
    parser.add_argument(
        "--back-to-back-requests", type=int, default=200, help="Per client, phases with no pause."
    )
    parser.add_argument("--seconds", type=float, default=60, help="Time limit per phase.")
    parser.add_argument("--think", type=float, default=1.0, help="Mean pause between reads (s).")
    parser.add_argument("--proposal-runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="Service worker processes.")
    parser.add_argument(
        "--unpublished",
        action="store_true",
        help="Delete the week's published records first (as after a mid-week snapshot).",
    )
    parser.add_argument(
        "--fast-path",
        choices=("on", "off", "both"),
        default="both",
        help="Household reads by the HouseholdReads middleware (on), the routes (off), or both.",
    )
    parser.add_argument("--no-paced", action="store_true", help="Only the back-to-back phases.")
    args = parser.parse_args(argv)

    home = args.home or args.work or ROOT / ".rebalance" / "bench" / f"service-{args.households}"
    home = home.resolve()
    if not list((home / "weeks").glob("*/scores.csv")):
        print(f"building a {args.households:,}-household world in {home} (once)", flush=True)
        build_world(home, households=args.households, seed=args.seed)
    if args.unpublished:
        (sorted((home / "weeks").glob("*/records.db")) or [home / "none"])[-1].unlink(
            missing_ok=True
        )
        print("no published records: each household's record is made on its first read")
    else:
        publish(home)
    users, ids = managers(home), household_ids(home)
    print(f"home {home}: {sum(map(len, ids.values())):,} households, {len(users)} localities")

    for fast_path in {"on": (True,), "off": (False,), "both": (True, False)}[args.fast_path]:
        measure(home, users, ids, args=args, fast_path=fast_path)


def measure(
    home: Path, users: dict[str, str], ids: dict[str, list[str]], *, args, fast_path: bool
) -> None:
    """Start the service, run every phase against it, stop it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(home, port, workers=args.workers, fast_path=fast_path)
    label = "fast path on" if fast_path else "fast path off"
    try:
        wait_until_up(base_url, seconds=300)
        warm = {"Authorization": f"Bearer {token(base_url, sorted(users)[0])}"}
        first = ids[users[sorted(users)[0]]][0]
        seconds = wait_until_loaded(
            base_url, headers=warm, path=f"/api/households/{first}", seconds=300
        )
        print(
            f"{label}: {args.workers} worker(s) up; the week loaded {seconds:.1f} s after start-up"
        )
        for pages in (False, True):
            clients = clients_for(base_url, users, ids, count=args.clients, pages=pages)
            kind = "pages" if pages else "JSON"
            # The same clients draw the same households again in the last phase: the first
            # back-to-back phase mostly makes bodies (first reads this week), the last reuses them.
            phases = (
                (args.think, f"pausing {args.think:g} s"),
                (0.0, "back to back, first reads"),
                (0.0, "back to back, read again"),
            )
            for think, pause in phases[1:] if args.no_paced else phases:
                cpu_before = process_cpu_seconds(server.pid)
                requests = args.requests if think else args.back_to_back_requests
                figures = load_in_own_process(
                    base_url, clients, requests=requests, seconds=args.seconds, think=think
                )
                report(
                    f"[{label}] {args.clients} clients reading household {kind}, {pause}",
                    figures,
                    server_cpu_s=process_cpu_seconds(server.pid) - cpu_before,
                )
        if fast_path or args.fast_path == "off":
            time_proposals(base_url, users, ids, runs=args.proposal_runs)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
