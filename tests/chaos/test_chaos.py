"""A short chaos run (about a minute) on PostgreSQL and SQLite: the same harness as ``make chaos``."""

from __future__ import annotations

import os

import pytest

from .harness import run_once, summary


@pytest.mark.slow
@pytest.mark.parametrize("db,duration,interval", [("postgres", 30, 3.0), ("sqlite", 20, 3.0)])
def test_short_chaos_run_has_no_violation(db: str, duration: int, interval: float) -> None:
    if db == "postgres" and os.geteuid() != 0 and not os.environ.get("GOLDBEAN_TEST_POSTGRES_URL"):
        pytest.skip("PostgreSQL chaos needs root (a throwaway cluster) or GOLDBEAN_TEST_POSTGRES_URL")
    run = run_once(db, duration=duration, clients=6, workers=3, fault_interval=interval, max_ops=20_000,
                   seed_=12345, cluster_name="chaostest", min_faults=6)
    report = summary(run)
    print(report)
    assert not run.violations, report
    assert sum(run.faults.values()) >= 6, report
    assert sum(1 for op in run.ops if op.outcome == "ok") >= 20, report
    kinds = {op.kind for op in run.ops if op.outcome == "ok"}
    assert {"award", "redeem"} <= kinds, report


@pytest.mark.slow
@pytest.mark.postgres
def test_short_chaos_run_on_a_highly_available_cluster(ha_cluster, ha_template: str) -> None:
    """One or two failovers (the primary's postmaster SIGKILLed, or stopped with -m immediate) under traffic on
    the local Patroni cluster (tests/conftest.py ``ha_cluster``): the checker's verdict as for one PostgreSQL,
    no 500, every node with the same books, and writes acknowledged again after each failover."""
    run = run_once("ha", duration=8, clients=6, workers=2, fault_interval=2.0, max_ops=20_000, seed_=4242,
                   min_failovers=1, ha_cluster=ha_cluster, ha_template=ha_template,
                   kinds=["ha_kill_postmaster", "ha_stop_immediate"])
    report = summary(run)
    print(report)
    assert not run.violations, report
    failovers = [f for f in run.failovers if f.failed_over]
    assert len(failovers) >= 1, report
    assert all(f.first_write_s is not None for f in failovers), report
    assert sum(1 for op in run.ops if op.outcome == "ok") >= 10, report  # a loaded machine serves few
