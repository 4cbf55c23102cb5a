"""A highly available PostgreSQL on one machine, for trying it out and for the fault runs: Patroni with etcd.

    python -m goldbean.ha_local up   [--dir .ha] [--standbys 2] [--db goldbean]   # make ha-up
    python -m goldbean.ha_local status [--dir .ha]
    python -m goldbean.ha_local down [--dir .ha]                                  # make ha-down

One etcd member (the distributed configuration store Patroni keeps the leader lock in), and one Patroni per
PostgreSQL node, each node with its own data folder, PostgreSQL port and REST port, all on 127.0.0.1 with
ports picked free at start. The first node bootstraps the cluster (``initdb``); the others clone it with
``pg_basebackup`` and stream from it. Patroni runs in strict synchronous mode: a commit is acknowledged only
once one standby has it on disk, and only that standby may be promoted (docs/operations.md, "High
availability"). Every node archives its WAL into ``<dir>/wal_archive`` when it is the primary, for
point-in-time recovery (``goldbean.pitr``).

PostgreSQL refuses to run as root: started as root, every process runs as the ``postgres`` user, which then
owns the folder. The machine's own PostgreSQL (5432) is never touched. ``down`` stops exactly the processes
``up`` started (their ids are in ``<dir>/state.json``, and each data folder's ``postmaster.pid``) and removes
the folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
SCOPE = "goldbean"
RUN_AS = "postgres"

# Patroni's timing (seconds). The leader lock lives ``ttl`` seconds unless renewed; each node wakes every
# ``loop_wait``; a store or PostgreSQL call gives up after ``retry_timeout`` (ttl >= loop_wait + 2 * retry).
# A primary whose PostgreSQL crashes is failed over at once (primary_start_timeout 0) when a synchronous
# standby is there; a primary that stops answering loses its lock after ttl.
DCS_TIMING = {"ttl": 12, "loop_wait": 2, "retry_timeout": 5}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    raise HaError("no PostgreSQL server binaries (apt-get install postgresql-15)")


class HaError(RuntimeError):
    """The local cluster cannot be started or reached; the message says why."""


def missing_tools() -> list[str]:
    """What ``up`` needs and this machine lacks (empty: everything is there)."""
    missing = [tool for tool in ("patroni", "etcd") if shutil.which(tool) is None]
    try:
        pg_bin()
    except HaError:
        missing.append("postgresql server")
    return missing


def _log(msg: str) -> None:
    print(f"[ha {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Node:
    name: str
    pg_port: int
    rest_port: int
    pid: int | None = None  # Patroni's


@dataclass
class State:
    etcd_client_port: int
    etcd_peer_port: int
    nodes: list[Node]
    db: str = "goldbean"
    etcd_pid: int | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State:
        raw = json.loads(path.read_text())
        raw["nodes"] = [Node(**n) for n in raw["nodes"]]
        return cls(**raw)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)


class LocalCluster:
    """The cluster in ``root`` (a folder of its own): start, inspect, fault and remove it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.state_path = self.root / "state.json"
        self.state: State | None = State.load(self.state_path) if self.state_path.exists() else None

    # --- who runs it ---------------------------------------------------------------------------------

    @property
    def user(self) -> str | None:
        """The user the processes run as: ``postgres`` when we are root, else ourselves (None)."""
        return RUN_AS if os.geteuid() == 0 else None

    def _chown(self, path: Path) -> None:
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _mkdir(self, path: Path, mode: int = 0o700) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        self._chown(path)
        return path

    def _as_user(self, cwd: Path) -> dict[str, Any]:
        """``subprocess`` arguments that run a command as ``self.user`` with a clean environment."""
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        if self.user:
            pw = pwd.getpwnam(self.user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env.update(HOME=str(cwd), USER=self.user, LOGNAME=self.user)
        kwargs["env"] = env
        return kwargs

    def pg_ctl(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``pg_ctl -D <node's data folder> ARGS`` as the cluster's user (e.g. ``stop -m immediate``)."""
        argv = [str(pg_bin() / "pg_ctl"), "-D", str(self.data_dir(name)), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(self.node_dir(name)),
                              **self._as_user(self.node_dir(name)))

    def _spawn(self, argv: list[str], log: Path, cwd: Path) -> int:
        kwargs = self._as_user(cwd)
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            self._chown(log)
            proc = subprocess.Popen(argv, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        return proc.pid

    # --- paths and URLs ------------------------------------------------------------------------------

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def data_dir(self, name: str) -> Path:
        return self.node_dir(name) / "data"

    @property
    def archive_dir(self) -> Path:
        return self.root / "wal_archive"

    def _st(self) -> State:
        if self.state is None:
            raise HaError(f"no local cluster in {self.root} (make ha-up)")
        return self.state

    def url(self, db: str | None = None, *, attrs: str = "read-write", user: str = "postgres") -> str:
        """The multi-host URL of every node: libpq tries them in turn and keeps the one that is ``attrs``."""
        st = self._st()
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in st.nodes)
        return f"postgresql+psycopg://{user}@{hosts}/{db or st.db}?target_session_attrs={attrs}"

    def node_url(self, name: str, db: str | None = None) -> str:
        st = self._st()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.node(name).pg_port}/{db or st.db}"

    def node(self, name: str) -> Node:
        for n in self._st().nodes:
            if n.name == name:
                return n
        raise HaError(f"no node {name}")

    # --- up ---------------------------------------------------------------------------------------------

    def up(self, *, standbys: int = 2, db: str = "goldbean", timeout: float = 120) -> State:
        missing = missing_tools()
        if missing:
            raise HaError("missing: " + ", ".join(missing) + " (apt-get install patroni etcd-server postgresql-15)")
        if self.state is not None:
            if self.alive():
                _log(f"already up in {self.root}")
                return self.state
            self.down()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self._chown(self.root)
        self._mkdir(self.archive_dir)
        nodes = [Node(f"node{i + 1}", free_port(), free_port()) for i in range(standbys + 1)]
        self.state = State(free_port(), free_port(), nodes, db=db, user=self.user)
        self.state.save(self.state_path)
        self.start_etcd()
        self.wait_etcd(timeout=30)
        self.start_node(nodes[0].name)
        self.wait_leader(timeout=timeout)
        for n in nodes[1:]:
            self.start_node(n.name)
        self.wait_healthy(timeout=timeout)
        self._create_db(db)
        return self.state

    def add_standby(self, timeout: float = 120) -> Node:
        """One more node: Patroni clones it from the primary (pg_basebackup) and it streams as a standby."""
        st = self._st()
        node = Node(f"node{max(int(n.name[4:]) for n in st.nodes) + 1}", free_port(), free_port())
        st.nodes.append(node)
        st.save(self.state_path)
        self.start_node(node.name)
        self.wait_healthy(timeout=timeout)
        return node

    def start_etcd(self) -> None:
        st = self._st()
        data = self._mkdir(self.root / "etcd")
        client, peer = f"http://127.0.0.1:{st.etcd_client_port}", f"http://127.0.0.1:{st.etcd_peer_port}"
        argv = [shutil.which("etcd") or "etcd", "--name", "etcd1", "--data-dir", str(data / "member-data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"etcd1={peer}", "--initial-cluster-state", "new",
                "--initial-cluster-token", f"goldbean-{st.etcd_peer_port}", "--enable-v2=true", "--logger", "zap",
                "--log-level", "warn"]
        st.etcd_pid = self._spawn(argv, self.root / "etcd.log", data)
        st.save(self.state_path)

    def wait_etcd(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if _http_json(f"http://127.0.0.1:{self._st().etcd_client_port}/health").get("health") == "true":
                    return
            time.sleep(0.2)
        raise HaError(f"etcd did not come up; see {self.root / 'etcd.log'}")

    def _patroni_config(self, node: Node) -> dict[str, Any]:
        st = self._st()
        folder = self.node_dir(node.name)
        archive = self.archive_dir
        hba = ["local all all trust", "host all all 127.0.0.1/32 trust",
               "host replication replicator 127.0.0.1/32 trust", "host replication postgres 127.0.0.1/32 trust"]
        return {
            "scope": SCOPE,
            "name": node.name,
            "log": {"level": "INFO", "dir": str(folder), "file_num": 2, "file_size": 10_000_000},
            "restapi": {"listen": f"127.0.0.1:{node.rest_port}", "connect_address": f"127.0.0.1:{node.rest_port}"},
            # etcd's v2 protocol, not "etcd3": Debian 12's Patroni 3.0.2 may overwrite another node's leader key
            # through etcd3 after a pause (fixed in Patroni 3.0.3, patroni/patroni#2689); its v2 client updates the
            # key only if it still holds our name (compare-and-swap). docs/operations.md, "High availability".
            "etcd": {"hosts": [f"127.0.0.1:{st.etcd_client_port}"]},
            "bootstrap": {
                "dcs": {
                    **DCS_TIMING,
                    "primary_start_timeout": 0,  # a crashed primary is failed over, not restarted in place
                    "synchronous_mode": True,
                    "synchronous_mode_strict": True,  # no standby in sync: writes wait, never acknowledged alone
                    "synchronous_node_count": 1,
                    "failsafe_mode": True,  # etcd down: the primary keeps serving while it sees every member
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "remove_data_directory_on_rewind_failure": True,
                        "remove_data_directory_on_diverged_timelines": True,
                        "parameters": {
                            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                            "max_connections": 300, "max_wal_senders": 10, "max_replication_slots": 10,
                            "wal_keep_size": "256MB", "synchronous_commit": "on", "fsync": "on",
                            "shared_buffers": "64MB", "hot_standby_feedback": "on", "min_wal_size": "32MB",
                            "max_standby_streaming_delay": "300s", "max_standby_archive_delay": "300s",
                            "archive_mode": "on", "archive_timeout": "60s",
                            "archive_command": (f"test ! -f {archive}/%f && cp %p {archive}/%f.part "
                                                f"&& mv {archive}/%f.part {archive}/%f"),
                            "track_commit_timestamp": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, "data-checksums", {"locale": "C.UTF-8"}],
                "pg_hba": hba,
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}",
                "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": str(self.data_dir(node.name)),
                "bin_dir": str(pg_bin()),
                "pgpass": str(folder / "pgpass"),
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "replicator"},
                                   "rewind": {"username": "postgres"}},
                "parameters": {"unix_socket_directories": str(folder), "logging_collector": "off"},
                "pg_hba": hba,
                "basebackup": [{"checkpoint": "fast"}],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def start_node(self, name: str) -> int:
        st = self._st()
        node = self.node(name)
        folder = self._mkdir(self.node_dir(name))
        config = folder / "patroni.yml"
        config.write_text(json.dumps(self._patroni_config(node), indent=2))  # JSON is YAML
        config.chmod(0o600)
        self._chown(config)
        node.pid = self._spawn([shutil.which("patroni") or "patroni", str(config)], folder / "patroni.out", folder)
        st.save(self.state_path)
        return node.pid

    # --- what the cluster looks like ----------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view (GET /cluster on the first node that answers): name, role, state, lag, timeline."""
        last: Exception | None = None
        for n in self._st().nodes:
            try:
                return _http_json(f"http://127.0.0.1:{n.rest_port}/cluster", timeout=2).get("members", [])
            except (OSError, ValueError) as exc:
                last = exc
        raise HaError(f"no Patroni answers: {last}")

    def leader(self) -> str | None:
        with contextlib.suppress(HaError):
            for m in self.members():
                if m.get("role") == "leader" and m.get("state") == "running":
                    return m["name"]
        return None

    def sync_standby(self) -> str | None:
        with contextlib.suppress(HaError):
            for m in self.members():
                if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming"):
                    return m["name"]
        return None

    def wait_leader(self, timeout: float = 90, other_than: str | None = None) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            name = self.leader()
            if name and name != other_than and self._is_primary(name):
                return name
            time.sleep(0.3)
        raise HaError(f"no primary after {timeout:.0f}s; see {self.root}/node*/patroni.out")

    def _is_primary(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.node(name).rest_port}/primary", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_healthy(self, timeout: float = 120) -> None:
        """Every node running on the leader's timeline, one leader, one synchronous standby."""
        deadline = time.time() + timeout
        want = len(self._st().nodes)
        seen: list[dict[str, Any]] = []
        while time.time() < deadline:
            with contextlib.suppress(HaError):
                seen = self.members()
                roles = [m.get("role") for m in seen]
                states = [m.get("state") for m in seen]
                timelines = {m.get("timeline") for m in seen}
                if (len(seen) == want and roles.count("leader") == 1 and "sync_standby" in roles
                        and all(s in ("running", "streaming") for s in states) and len(timelines) == 1):
                    return
            time.sleep(0.5)
        raise HaError(f"cluster not healthy after {timeout:.0f}s: {seen}")

    def alive(self) -> bool:
        st = self.state
        return st is not None and st.etcd_pid is not None and _alive(st.etcd_pid) and any(
            n.pid is not None and _alive(n.pid) for n in st.nodes)

    def postmaster_pid(self, name: str) -> int | None:
        pidfile = self.data_dir(name) / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def node_pids(self, name: str) -> list[int]:
        """Patroni, the postmaster and its children: the processes of one 'machine'."""
        pids = []
        node = self.node(name)
        if node.pid and _alive(node.pid):
            pids.append(node.pid)
        pm = self.postmaster_pid(name)
        if pm:
            pids.append(pm)
            pids.extend(_children(pm))
        return pids

    def heal(self, timeout: float = 120) -> None:
        """Bring every part back, as the machines' service managers would: resume paused processes, start a
        dead etcd and every node whose Patroni is gone; then wait until the cluster is healthy."""
        st = self._st()
        for n in st.nodes:
            for pid in self.node_pids(n.name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        if not (st.etcd_pid and _alive(st.etcd_pid)):
            self.start_etcd()
            self.wait_etcd()
        for n in st.nodes:
            if not (n.pid and _alive(n.pid)):
                self.start_node(n.name)
        self.wait_healthy(timeout=timeout)

    def create_database(self, db: str, template: str | None = None) -> str:
        """A database of that name (made on the primary if missing, as a copy of ``template`` if given);
        returns its multi-host URL."""
        self._create_db(db, template)
        return self.url(db)

    def _create_db(self, db: str, template: str | None = None) -> None:
        import psycopg

        leader = self.wait_leader()
        deadline = time.time() + 60
        while True:  # strict synchronous mode: the first write waits for the standby to be in sync
            try:
                with psycopg.connect(host="127.0.0.1", port=self.node(leader).pg_port, user="postgres",
                                     dbname="postgres", autocommit=True, connect_timeout=5) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                        conn.execute(f'CREATE DATABASE "{db}"' + (f' TEMPLATE "{template}"' if template else ""))
                return
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    # --- point-in-time recovery (docs/operations.md, "Point-in-time recovery") -------------------------------

    def base_backup(self, dest: str | os.PathLike[str] | None = None) -> Path:
        """A base backup of the primary (``pg_basebackup``, plain format, with the WAL it needs) into ``dest``
        (default ``<dir>/base/<UTC stamp>``): with the WAL archive, the start of any point-in-time recovery."""
        leader = self.wait_leader()
        target = Path(dest) if dest else self.root / "base" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._mkdir(target.parent, 0o700)
        argv = [str(pg_bin() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.node(leader).pg_port),
                "-U", "postgres", "-D", str(target), "-Fp", "-X", "stream", "--checkpoint=fast", "--no-password"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=str(self.root),
                           **self._as_user(self.root))
        if r.returncode != 0:
            raise HaError(f"pg_basebackup failed: {r.stderr.strip()[-1000:]}")
        return target

    def archive_now(self, timeout: float = 60) -> str:
        """Close the primary's current WAL segment and wait until it is in the archive; returns its name."""
        import psycopg

        leader = self.wait_leader()
        with psycopg.connect(host="127.0.0.1", port=self.node(leader).pg_port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=5) as conn:
            lsn = conn.execute("SELECT pg_switch_wal()").fetchone()[0]
            name = conn.execute("SELECT pg_walfile_name(%s)", (lsn,)).fetchone()[0]
        deadline = time.time() + timeout
        while not (self.archive_dir / name).exists():
            if time.time() > deadline:
                raise HaError(f"WAL segment {name} not archived after {timeout:.0f}s")
            time.sleep(0.2)
        return name

    def restore(self, base: str | os.PathLike[str], *, target_time: str | None, name: str = "pitr",
                timeout: float = 180) -> tuple[str, Path]:
        """Recover ``base`` with the WAL archive up to ``target_time`` (a PostgreSQL timestamp with time zone;
        None: to the end of the archive) into ``<dir>/<name>``, promote it, and serve it on a free port.
        Returns its URL (database ``self.state.db``) and its data folder; ``stop_restored`` stops it."""
        data = self.root / name / "data"
        if data.exists():
            self.stop_restored(name)
            shutil.rmtree(data.parent)
        self._mkdir(data.parent)
        r = subprocess.run(["cp", "-a", str(base), str(data)], capture_output=True, text=True)
        if r.returncode != 0:
            raise HaError(f"cannot copy the base backup: {r.stderr}")
        for leftover in ("postmaster.pid", "standby.signal", "postmaster.opts"):
            (data / leftover).unlink(missing_ok=True)
        port = free_port()
        settings = {
            "port": port, "listen_addresses": "127.0.0.1", "unix_socket_directories": str(data.parent),
            "restore_command": f"cp {self.archive_dir}/%f %p", "recovery_target_timeline": "latest",
            "recovery_target_action": "promote", "archive_mode": "off", "synchronous_standby_names": "",
            "primary_conninfo": "", "hot_standby": "on", "logging_collector": "off",
        }
        if target_time:
            settings["recovery_target_time"] = target_time
        with open(data / "postgresql.auto.conf", "a") as fh:  # wins over the copied postgresql.conf
            fh.write("\n# point-in-time recovery (goldbean.ha_local restore)\n")
            fh.writelines(f"{k} = '{v}'\n" for k, v in settings.items())
        (data / "recovery.signal").touch()
        if self.user:
            subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(data.parent)], check=False)
        r = self.pg_ctl_dir(data, "start", "-w", "-t", str(int(timeout)), "-l", str(data.parent / "postgres.log"))
        if r.returncode != 0:
            raise HaError("the restored server did not start: " + (_why(data.parent / "postgres.log")
                                                                   or r.stderr.strip()))
        self._wait_promoted(port, timeout, data)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{self._st().db}", data

    def pg_ctl_dir(self, data: Path, *args: str, timeout: float = 200) -> subprocess.CompletedProcess:
        argv = [str(pg_bin() / "pg_ctl"), "-D", str(data), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(data.parent),
                              **self._as_user(data.parent))

    def _wait_promoted(self, port: int, timeout: float, data: Path) -> None:
        import psycopg

        deadline = time.time() + timeout
        while time.time() < deadline:
            if not (data / "postmaster.pid").exists():  # recovery stopped: e.g. the archive ends before the moment
                raise HaError("the restored server stopped: " + _why(data.parent / "postgres.log"))
            with contextlib.suppress(psycopg.Error):
                with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                     connect_timeout=3) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
            time.sleep(0.3)
        raise HaError(f"the restored server on port {port} is still recovering after {timeout:.0f}s")

    def stop_restored(self, name: str = "pitr") -> None:
        data = self.root / name / "data"
        if (data / "postmaster.pid").exists():
            self.pg_ctl_dir(data, "stop", "-m", "fast", "-w", timeout=60)

    # --- down --------------------------------------------------------------------------------------------

    def stop_node(self, name: str, *, timeout: float = 30) -> None:
        """Stop one node as an operator would: Patroni shuts its PostgreSQL down cleanly, then exits."""
        node = self.node(name)
        pm = self.postmaster_pid(name)
        if node.pid and _alive(node.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGCONT)
                os.kill(node.pid, signal.SIGTERM)
            _wait_gone([node.pid], timeout)
        if pm and _alive(pm):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pm, signal.SIGCONT)
                os.kill(pm, signal.SIGINT)  # fast shutdown
            _wait_gone([pm], timeout)
        for pid in [p for p in (node.pid, pm) if p and _alive(p)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.pid = None
        self._st().save(self.state_path)

    def down(self) -> None:
        """Stop every process this cluster started (by id) and remove its folder."""
        if self.state is not None:
            nodes = self.state.nodes
            postmasters = [p for p in (self.postmaster_pid(n.name) for n in nodes) if p]
            patronis = [n.pid for n in nodes if n.pid and _alive(n.pid)]
            # nothing of it is kept: no clean shutdown needed. Patroni first (it would restart PostgreSQL),
            # then every postmaster's immediate shutdown (SIGQUIT), then whatever is left
            for pid in patronis:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in postmasters:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGQUIT)
            _wait_gone([*patronis, *postmasters], 10)
            for pid in [p for p in [*patronis, *postmasters] if _alive(p)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.state.etcd_pid and _alive(self.state.etcd_pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.state.etcd_pid, signal.SIGTERM)
                _wait_gone([self.state.etcd_pid], 10)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.state.etcd_pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            for pitr in self.root.glob("*/data/recovery.signal"):
                self.stop_restored(pitr.parent.parent.name)
        with contextlib.suppress(Exception):
            for done in self.root.glob("*/data/postmaster.pid"):
                if not done.parent.parent.name.startswith("node"):
                    self.stop_restored(done.parent.parent.name)
        # a postmaster left by a state file we could not read
        for pidfile in self.root.glob("*/data/postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError, ProcessLookupError):
                pid = int(pidfile.read_text().splitlines()[0])
                if _alive(pid) and str(pidfile.parent) in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        self.state = None


# --- small helpers ---------------------------------------------------------------------------------------

def _why(log: Path) -> str:
    """The FATAL lines of a PostgreSQL log (else its last lines): why a server stopped."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    fatal = [line for line in lines if "FATAL" in line or "PANIC" in line]
    return " | ".join((fatal or lines)[-3:])


def _http_json(url: str, timeout: float = 3) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                out.append(int(entry))
    return out


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m goldbean.ha_local", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["up", "down", "status", "url", "add-standby", "basebackup", "pitr"],
                   help="pitr: recover the latest base backup with the WAL archive to --to and serve it")
    p.add_argument("--dir", default=os.environ.get("GOLDBEAN_HA_DIR", ".ha"))
    p.add_argument("--standbys", type=int, default=2, help="standbys besides the primary (default 2)")
    p.add_argument("--db", default="goldbean")
    p.add_argument("--to", default=None, help="pitr: the moment, e.g. '2026-11-29 10:15:00+08' (default: the end)")
    args = p.parse_args(argv)
    cluster = LocalCluster(args.dir)
    try:
        if args.command == "up":
            cluster.up(standbys=args.standbys, db=args.db)
            _print_up(cluster)
        elif args.command == "down":
            cluster.down()
            print(f"removed the local cluster in {cluster.root}")
        elif args.command == "url":
            print(cluster.url())
        elif args.command == "add-standby":
            node = cluster.add_standby()
            print(f"{node.name} streams on port {node.pg_port}; the URL with it:\n" + cluster.url())
        elif args.command == "basebackup":
            print(f"base backup in {cluster.base_backup()}")
        elif args.command == "pitr":
            bases = sorted((cluster.root / "base").glob("*"))
            if not bases:
                raise HaError("no base backup yet: python -m goldbean.ha_local basebackup")
            cluster.archive_now()
            url, data = cluster.restore(bases[-1], target_time=args.to)
            print(f"recovered {bases[-1].name} to {args.to or 'the end of the archive'} in {data}")
            print(f"GOLDBEAN_DATABASE_URL={url}   (goldbean ledger verify; make ha-down stops it with the rest)")
        else:
            for m in cluster.members():
                print(f"{m['name']:6s} {m.get('role', ''):13s} {m.get('state', ''):10s} port {m.get('port')} "
                      f"timeline {m.get('timeline', '')} lag {m.get('lag', 0)}")
    except HaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_up(cluster: LocalCluster) -> None:
    st = cluster._st()
    print(f"local HA cluster in {cluster.root}: etcd on 127.0.0.1:{st.etcd_client_port}, "
          + ", ".join(f"{n.name} PostgreSQL {n.pg_port} (Patroni REST {n.rest_port})" for n in st.nodes))
    for m in cluster.members():
        print(f"  {m['name']}: {m.get('role')} {m.get('state')}")
    print("GOLDBEAN_DATABASE_URL=" + cluster.url())
    print("GOLDBEAN_READ_DATABASE_URL=" + cluster.url(attrs="prefer-standby"))
    print("then: goldbean db upgrade; `python -m goldbean.ha_local status` shows the roles; make ha-down removes it")


if __name__ == "__main__":
    sys.exit(main())
