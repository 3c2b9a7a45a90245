"""Service speed: household pages under 50 concurrent clients; a locality's proposal via the API.

    .venv/bin/python bench/bench_service.py                 # builds (once) a 110k-household world
    .venv/bin/python bench/bench_service.py --home .rebalance   # or uses a home with a weekly run

The service runs in its own process (uvicorn on 127.0.0.1, a free port) exactly as `rebalance
serve` runs it; clients are httpx async clients in this process. Each client signs in as the
manager of a locality and reads random households of that locality (all in scope, so every
answer should be 200), through the JSON API and as HTML pages. Every read is audited, as in
production. Two loads per kind of read:

- people: 50 concurrent clients, each reading a page, then pausing (exponential, mean --think
  seconds, default 1) before the next, as staff at their desks do. Target: p95 under 50 ms, no
  errors.
- saturation: the same 50 clients with no pause at all, to find the service's capacity (requests
  per second); latency then is mostly queueing (50 requests in flight / throughput).

Then a locality's proposal through POST /api/proposals (target under 5 s).

Without --home, a world is built in --work (default .rebalance/bench/service-<N>) on first use:
the synthetic city, ingested, a model fitted with quick settings, two weekly score files and the
week's proposal, all with the project's own functions. Later runs reuse it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def managers(home: Path) -> dict[str, str]:
    """One manager per locality (username -> locality), created if missing."""
    from api import auth, service_db
    from features.store import Store

    db = service_db.open_service_db(home)
    localities = sorted(
        Store(home).read_table("households", columns=["locality"])["locality"].unique()
    )
    users = {}
    for number, locality in enumerate(localities):
        username = f"bench-manager-{number}"
        if service_db.user_by_name(db.read(), username) is None:
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


def start_server(home: Path, port: int) -> subprocess.Popen:
    code = (
        "from api.app import serve; from api.settings import load_settings; "
        f"serve(load_settings(home={str(home)!r}), host='127.0.0.1', port={port})"
    )
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
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


async def client_loop(
    base_url: str,
    *,
    auth: dict,
    paths: list[str],
    requests: int,
    deadline: float,
    think: float,
    latencies: list[float],
    errors: list[int],
    seed: int,
) -> None:
    chooser = random.Random(seed)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, **auth) as client:
        # Staggered starts, so that paced clients do not arrive in step.
        await asyncio.sleep(chooser.uniform(0, think))
        for _ in range(requests):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            response = await client.get(chooser.choice(paths))
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(response.status_code)
            if think:
                await asyncio.sleep(chooser.expovariate(1 / think))


async def load(
    base_url: str, clients: list[dict], *, requests: int, seconds: float, think: float
) -> dict:
    latencies, errors = [], []
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(
            client_loop(
                base_url,
                auth=client["auth"],
                paths=client["paths"],
                requests=requests,
                deadline=deadline,
                think=think,
                latencies=latencies,
                errors=errors,
                seed=number,
            )
            for number, client in enumerate(clients)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "max_ms": 1000 * ordered[-1],
    }


def report(name: str, figures: dict, *, target: bool) -> None:
    verdict = "ok" if figures["p95_ms"] < 50 and figures["errors"] == 0 else "MISSED"
    print(
        f"{name}: {figures['requests']} requests, {figures['errors']} errors, "
        f"{figures['per_second']:.0f}/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.0f} ms"
        + (f"  [{verdict}: p95 < 50 ms, no errors]" if target else "  [capacity]"),
        flush=True,
    )


def clients_for(
    base_url: str, users: dict[str, str], ids: dict[str, list[str]], *, count: int, pages: bool
) -> list[dict]:
    prefix = "/households/" if pages else "/api/households/"
    credentials = {
        username: (
            {"cookies": {"rebalance_session": session_cookie(base_url, username)}}
            if pages
            else {"headers": {"Authorization": f"Bearer {token(base_url, username)}"}}
        )
        for username in users
    }
    names = sorted(users)
    return [
        {
            "auth": credentials[names[number % len(names)]],
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
    parser.add_argument("--requests", type=int, default=40, help="Per client, per phase.")
    parser.add_argument("--seconds", type=float, default=60, help="Time limit per phase.")
    parser.add_argument("--think", type=float, default=1.0, help="Mean pause between reads (s).")
    parser.add_argument("--proposal-runs", type=int, default=3)
    args = parser.parse_args(argv)

    home = args.home or args.work or ROOT / ".rebalance" / "bench" / f"service-{args.households}"
    home = home.resolve()
    if not list((home / "weeks").glob("*/scores.csv")):
        print(f"building a {args.households:,}-household world in {home} (once)", flush=True)
        build_world(home, households=args.households, seed=args.seed)
    users, ids = managers(home), household_ids(home)
    print(f"home {home}: {sum(map(len, ids.values())):,} households, {len(users)} localities")

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(home, port)
    try:
        wait_until_up(base_url, seconds=60)
        warm = {"Authorization": f"Bearer {token(base_url, sorted(users)[0])}"}
        started = time.perf_counter()
        first = ids[users[sorted(users)[0]]][0]
        httpx.get(
            f"{base_url}/api/households/{first}", headers=warm, timeout=300
        ).raise_for_status()
        print(f"first household read (loads the week): {time.perf_counter() - started:.1f} s")
        for pages in (False, True):
            clients = clients_for(base_url, users, ids, count=args.clients, pages=pages)
            kind = "pages" if pages else "JSON"
            for think in (args.think, 0.0):
                figures = asyncio.run(
                    load(
                        base_url, clients, requests=args.requests, seconds=args.seconds, think=think
                    )
                )
                pause = f"pausing {think:g} s" if think else "no pause"
                report(
                    f"{args.clients} clients reading household {kind}, {pause}",
                    figures,
                    target=bool(think),
                )
        time_proposals(base_url, users, ids, runs=args.proposal_runs)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
