"""Bench: a policy simulation of the city under one policy (default: 110k, 52 weeks, product).

Prints the history and training time (outside the budget), seconds per stage of the weekly loop,
the 52 run weeks' total (wall and CPU) against the 300 s budget, and the follow-up (26 weeks
without new allocations, which the measures count; reported separately, outside the budget).

    .venv/bin/python bench/bench_simulate.py [--households 110000] [--weeks 52] [--policy product]
        [--follow-up 26] [--time-limit 2.0]
"""

from __future__ import annotations

import argparse
import time

from experiments.simulation import (
    SimulationSettings,
    run_history,
    run_policy,
    train_simulation_model,
)

BUDGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--policy", default="product")
    parser.add_argument("--follow-up", type=int, default=26)
    parser.add_argument("--time-limit", type=float, default=2.0)
    arguments = parser.parse_args()
    settings = SimulationSettings(
        weeks=arguments.weeks,
        households=arguments.households,
        seeds=(0,),
        policies=(arguments.policy,),
        time_limit_s=arguments.time_limit,
        follow_up_weeks=arguments.follow_up,
    )
    started, cpu = time.perf_counter(), time.process_time()
    history = run_history(settings, seed=0)
    print(
        f"history ({settings.history_weeks} weeks): {time.perf_counter() - started:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU"
    )
    started, cpu = time.perf_counter(), time.process_time()
    model, _ = train_simulation_model(history)
    print(
        f"training: {time.perf_counter() - started:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU"
    )
    started, cpu = time.perf_counter(), time.process_time()
    run, seconds = run_policy(
        history, policy=arguments.policy, settings=settings, model=model, early_wards=()
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    follow_up, cpu_run, cpu_follow_up = (
        seconds.pop(key) for key in ("follow_up", "cpu_run", "cpu_follow_up")
    )
    for stage, value in seconds.items():
        print(f"  {stage:<11} {value:7.1f} s ({value / settings.weeks:.2f} s/week)")
    run_wall = sum(seconds.values())
    print(
        f"run ({settings.weeks} weeks): {run_wall:.1f} s wall, {cpu_run:.1f} s CPU, "
        f"{run.weekly['new_cases'].sum()} cases, "
        f"{int((~run.weekly['reproducible']).sum())} weeks stopped by the clock"
    )
    print(
        f"follow-up ({settings.follow_up_weeks} weeks): {follow_up:.1f} s wall, "
        f"{cpu_follow_up:.1f} s CPU"
    )
    print(f"all: {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"budget: {run_wall:.1f} s of {BUDGET_S:.0f} s ({run_wall / BUDGET_S:.0%})")


if __name__ == "__main__":
    main()
