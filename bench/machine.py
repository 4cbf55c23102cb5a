"""What the machine itself was like during a run, so that figures from different machines and moments can be
read side by side: the CPU time a hypervisor took from this virtual machine (steal) and a fixed piece of
the ledger's own Python, timed (absolute figures such as ``batch-*`` scale with it, ratios much less)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ledger.journal.chain import entry_hash

PROC_STAT = Path("/proc/stat")
HASHES = 20_000  # entry hashes per timing of machine-python: ~0.1 s
TIMINGS = 7
WARM_UP_S = 1.0  # hashing before the timings: an idle virtual CPU is slow for its first fraction of a second


@dataclass(frozen=True)
class CpuTicks:
    steal: int
    total: int


def cpu_ticks(stat_text: str | None = None) -> CpuTicks | None:
    """The machine's CPU ticks since boot from the ``cpu`` line of ``/proc/stat`` (``None`` off Linux)."""
    if stat_text is None:
        try:
            stat_text = PROC_STAT.read_text()
        except OSError:
            return None
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already in user
            steal = ticks[7] if len(ticks) > 7 else 0
            return CpuTicks(steal=steal, total=sum(ticks[:8]))
    return None


def steal_percent(before: CpuTicks | None, after: CpuTicks | None) -> float | None:
    """The share of the CPUs' time between two readings that the hypervisor gave to other machines."""
    if before is None or after is None or after.total <= before.total:
        return None
    return 100.0 * (after.steal - before.steal) / (after.total - before.total)


def python_speed_us() -> float:
    """Microseconds per entry hash of the ledger's own chain (``ledger.journal.chain.entry_hash``), the best
    of a few timings after a warm-up: a yardstick of how fast this machine runs the ledger's Python."""
    best = float("inf")
    head = "0" * 64
    warm_until = time.perf_counter() + WARM_UP_S
    while time.perf_counter() < warm_until:  # (two runs ten minutes apart gave 3.3 and 5.4 without it)
        head = _hash_many(head, 1_000)
    for _ in range(TIMINGS):
        t0 = time.perf_counter()
        head = _hash_many(head, HASHES)
        best = min(best, time.perf_counter() - t0)
    return best / HASHES * 1e6


def _hash_many(head: str, n: int) -> str:
    for seq in range(1, n + 1):
        head = entry_hash(head, account_id=7, seq=seq, transfer_key=f"k{seq}", kind="redeem", phase="single",
                          side="D", counterparty_id=9, amount=5, pending_delta=0, posted_delta=5,
                          balance_after=100 - seq, actor="bench", reason="", reference=None)
    return head
