"""The chaos run against a highly available PostgreSQL (``--db ha``): a local Patroni + etcd cluster of three
nodes (``goldbean.ha_local``), the service given its multi-host URL, and faults that kill, stop and pause the
primary, stop a standby, and kill the manager (Patroni on the primary, or etcd).

Faults that take the primary away are *failovers* when Patroni promotes a standby. For each, the run
records when the fault was injected, when the new primary was seen, and (from the workload's answers) when
the first write was acknowledged after it: the time a till waits, the RTO. After every fault the cluster is
healed as the machines' service managers would (paused processes resumed, dead processes started again) and
the next fault waits until all three nodes are back on one timeline with a synchronous standby.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from goldbean.ha_local import HaError, LocalCluster, missing_tools

FAILOVER_KINDS = ("ha_kill_postmaster", "ha_stop_immediate", "ha_pause_primary")
OTHER_HA_KINDS = ("ha_stop_standby", "ha_kill_manager", "ha_kill_etcd", "ha_terminate_backends")
RTO_TARGET_MEDIAN_S = 30.0
RTO_TARGET_MAX_S = 60.0


def ha_available() -> tuple[bool, str]:
    missing = missing_tools()
    if missing:
        return False, "missing " + ", ".join(missing) + " (apt-get install patroni etcd-server etcd-client)"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False, "running as root but there is no postgres user to run PostgreSQL as"
    return True, ""


@dataclass
class Failover:
    """One fault that took the primary away."""

    kind: str
    at: float  # time.time() of the fault
    old_leader: str
    new_leader: str | None = None
    promoted_s: float | None = None  # until Patroni showed another node as the running primary
    first_write_s: float | None = None  # until the first write acknowledged after the fault (set by the checker)

    @property
    def failed_over(self) -> bool:
        return self.new_leader is not None and self.new_leader != self.old_leader


class HaDb:
    """The run's database in a local cluster: its own cluster (made and removed here) or one given."""

    def __init__(self, folder: Path, dbname: str = "chaos", cluster: LocalCluster | None = None,
                 template: str | None = None) -> None:
        self.own = cluster is None
        self.template = template  # a migrated database to copy (saves the migrations' time)
        self.cluster = cluster or LocalCluster(folder / "ha")
        self.dbname = dbname
        self.url = ""
        self.read_url = ""

    def create(self) -> None:
        if self.own:
            self.cluster.up(standbys=2, db=self.dbname)
        self.url = self.cluster.create_database(self.dbname, self.template)
        self.read_url = self.cluster.url(self.dbname, attrs="prefer-standby")

    def drop(self) -> None:
        if self.own:
            self.cluster.down()
            return
        with contextlib.suppress(Exception):
            self.cluster.heal(timeout=60)
            import psycopg

            leader = self.cluster.wait_leader(timeout=30)
            with psycopg.connect(host="127.0.0.1", port=self.cluster.node(leader).pg_port, user="postgres",
                                 dbname="postgres", autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


class HaFaults:
    """The cluster's faults, each returning a ``Failover`` when it took the primary away."""

    def __init__(self, ha: HaDb, rng: Random, log: Any) -> None:
        self.ha = ha
        self.cluster = ha.cluster
        self.rng = rng
        self.log = log
        self.failovers: list[Failover] = []
        self.notes: list[str] = []

    def _leader(self) -> str:
        return self.cluster.wait_leader(timeout=60)

    def _await_promotion(self, f: Failover, timeout: float = 90) -> Failover:
        deadline = time.time() + timeout
        while time.time() < deadline:
            name = self.cluster.leader()
            if name and name != f.old_leader and self.cluster._is_primary(name):
                f.new_leader, f.promoted_s = name, time.time() - f.at
                break
            time.sleep(0.2)
        self.failovers.append(f)
        self.log(f"{f.kind}: {f.old_leader} -> {f.new_leader or 'no new primary'}"
                 + (f" after {f.promoted_s:.1f}s" if f.promoted_s is not None else ""))
        return f

    def ha_kill_postmaster(self) -> Failover:
        """SIGKILL of the primary's postmaster (Patroni alive: it fails over at once, primary_start_timeout 0)."""
        leader = self._leader()
        pid = self.cluster.postmaster_pid(leader)
        if pid is None:
            raise HaError(f"no postmaster on {leader}")
        f = Failover("ha_kill_postmaster", time.time(), leader)
        os.kill(pid, signal.SIGKILL)
        return self._await_promotion(f)

    def ha_stop_immediate(self) -> Failover:
        """``pg_ctl stop -m immediate`` of the primary."""
        leader = self._leader()
        f = Failover("ha_stop_immediate", time.time(), leader)
        self.cluster.pg_ctl(leader, "stop", "-m", "immediate")
        return self._await_promotion(f)

    def ha_pause_primary(self) -> Failover:
        """SIGSTOP of the primary's machine (Patroni, the postmaster and its children): a partition without a
        network. Its lock expires, a standby is promoted; when it wakes it finds itself demoted and rejoins."""
        leader = self._leader()
        pids = self.cluster.node_pids(leader)
        f = Failover("ha_pause_primary", time.time(), leader)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        try:
            self._await_promotion(f)
            time.sleep(1 + 2 * self.rng.random())  # a little longer apart
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        return f

    def ha_stop_standby(self) -> None:
        """A standby stopped (the synchronous one when there is one: the primary must pick the other)."""
        leader = self._leader()
        name = self.cluster.sync_standby() or next(n.name for n in self.cluster._st().nodes if n.name != leader)
        self.cluster.stop_node(name)
        time.sleep(2 + 4 * self.rng.random())
        self.cluster.start_node(name)

    def ha_kill_manager(self) -> None:
        """SIGKILL of the primary's Patroni; its service manager starts it again a moment later."""
        leader = self._leader()
        node = self.cluster.node(leader)
        if node.pid:
            os.kill(node.pid, signal.SIGKILL)
        time.sleep(1 + 2 * self.rng.random())
        self.cluster.start_node(leader)

    def ha_kill_etcd(self) -> None:
        """SIGKILL of etcd (the store holding the leader lock), started again a moment later."""
        st = self.cluster._st()
        if st.etcd_pid:
            os.kill(st.etcd_pid, signal.SIGKILL)
        time.sleep(2 + 3 * self.rng.random())
        self.cluster.start_etcd()
        self.cluster.wait_etcd()

    def ha_terminate_backends(self) -> None:
        import psycopg

        leader = self._leader()
        with psycopg.connect(host="127.0.0.1", port=self.cluster.node(leader).pg_port, user="postgres",
                             dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (self.ha.dbname,))

    def heal(self) -> None:
        before = self.cluster.leader()
        self.cluster.heal(timeout=150)
        after = self.cluster.leader()
        if before and after and before != after:
            self.notes.append(f"the primary moved from {before} to {after} while healing")


# --- after the run --------------------------------------------------------------------------------------------

def first_writes(failovers: list[Failover], acks: list[tuple[float, float]]) -> None:
    """Set each failover's ``first_write_s``: the first write acknowledged whose attempt began after the fault.
    ``acks`` holds (attempt started, acknowledged) for every acknowledged write."""
    for f in failovers:
        after = [ack for started, ack in acks if started >= f.at]
        f.first_write_s = (min(after) - f.at) if after else None


def rto_lines(failovers: list[Failover]) -> list[str]:
    done = [f for f in failovers if f.failed_over]
    lines = [f"failovers: {len(done)} of {len(failovers)} faults that took the primary away"
             + (" (" + ", ".join(f"{k} {sum(1 for f in done if f.kind == k)}" for k in FAILOVER_KINDS) + ")")]
    for f in failovers:
        lines.append(f"  {f.kind:20s} {f.old_leader} -> {f.new_leader or '-'}: promoted after "
                     f"{_s(f.promoted_s)}, first write acknowledged after {_s(f.first_write_s)}")
    rto = [f.first_write_s for f in done if f.first_write_s is not None]
    promoted = [f.promoted_s for f in done if f.promoted_s is not None]
    if rto:
        med, top = statistics.median(rto), max(rto)
        ok = med <= RTO_TARGET_MEDIAN_S and top <= RTO_TARGET_MAX_S
        lines.append(f"RTO (fault to first acknowledged write): median {med:.1f}s, max {top:.1f}s "
                     f"(target median <= {RTO_TARGET_MEDIAN_S:.0f}s, max <= {RTO_TARGET_MAX_S:.0f}s: "
                     f"{'met' if ok else 'MISSED'})")
    if promoted:
        lines.append(f"promotion (fault to new primary): median {statistics.median(promoted):.1f}s, "
                     f"max {max(promoted):.1f}s")
    return lines


def _s(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def standbys_agree(cluster: LocalCluster, dbname: str, timeout: float = 60) -> tuple[bool, str]:
    """Every node holds the same books as the primary (after replaying what it has): transfers, entries and
    the accounts' totals. An old primary that kept a transaction nobody acknowledged would differ."""
    import psycopg

    sql = ("SELECT (SELECT COUNT(*) FROM transfers), (SELECT COALESCE(SUM(amount), 0) FROM transfers), "
           "(SELECT COUNT(*) FROM entries), (SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM accounts)")
    deadline = time.time() + timeout
    seen: dict[str, Any] = {}
    while time.time() < deadline:
        seen = {}
        for n in cluster._st().nodes:
            try:
                with psycopg.connect(host="127.0.0.1", port=n.pg_port, user="postgres", dbname=dbname,
                                     connect_timeout=5) as conn:
                    seen[n.name] = conn.execute(sql).fetchone()
            except psycopg.Error as exc:
                seen[n.name] = f"unreachable: {exc}".splitlines()[0]
        if len({str(v) for v in seen.values()}) == 1:
            return True, f"{len(seen)} nodes: transfers, amount, entries, balance {next(iter(seen.values()))}"
        time.sleep(1)
    return False, "; ".join(f"{k}: {v}" for k, v in seen.items())
