"""What every figure with a reference shares: children that measure in rounds, throwaway virtualenvs for
the other projects, and ratios taken only from rounds measured back to back.

A *round child* is a process that sets itself up once (seeds its books, signs its codes, starts its
workers), prints one JSON line with ``"ready"``, then answers each ``round START DURATION [ARG]`` line
on its standard input with one JSON line of results, measured from START (epoch seconds) for DURATION
seconds. ``bench.run`` drives the ledger's own rounds and the children's alternately, so that a figure
and its reference are always measured within a minute of each other on the same machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_APART_S = 60.0  # a ratio of two sides measured further apart than this is not printed


@dataclass
class Round:
    start: float
    end: float
    value: float

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2


def paired_ratio(num: list[Round], den: list[Round]) -> tuple[float | None, str]:
    """The median over rounds of ``num[i].value / den[i].value``, each pair measured back to back; a pair
    whose two sides lie more than ``MAX_APART_S`` apart is refused (``None`` when none is left)."""
    ratios, refused = [], 0
    for a, b in zip(num, den):
        if abs(a.mid - b.mid) > MAX_APART_S:
            refused += 1
            continue
        if b.value:
            ratios.append(a.value / b.value)
    note = "median of round ratios " + ", ".join(f"{r:.2f}" for r in ratios)
    if refused:
        note += f"; {refused} pair(s) refused: measured more than {MAX_APART_S:.0f} s apart"
    if not ratios:
        return None, f"no ratio: the two sides were measured more than {MAX_APART_S:.0f} s apart"
    return statistics.median(ratios), note


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Round, Any]:
    """Run ``fn`` (which returns a rate or a dict with "rate") and wrap its value with when it ran."""
    t0 = time.time()
    out = fn(*args, **kwargs)
    value = out["rate"] if isinstance(out, dict) else out
    return Round(t0, time.time(), float(value or 0.0)), out


class RoundChild:
    """A child process measured in rounds (see the module doc)."""

    def __init__(self, argv: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None,
                 ready_timeout: float = 1800, stderr: Path | None = None) -> None:
        self.err = open(stderr, "wb") if stderr else subprocess.DEVNULL  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, bufsize=1)
        self.ready = self._read(ready_timeout)
        if not self.ready.get("ready"):
            raise RuntimeError(f"{argv[1:3]} did not get ready: {self.ready}")

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.time() + timeout
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"child exited with {self.proc.wait()}")
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise TimeoutError("child did not answer")

    def round(self, duration: float, arg: str = "", lead: float = 1.0) -> tuple[Round, dict[str, Any]]:
        """One round starting ``lead`` seconds from now; its Round (value: "rate") and its whole answer."""
        start = time.time() + lead
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"round {start:.3f} {duration} {arg}\n")
        self.proc.stdin.flush()
        out = self._read(duration + lead + 300)
        start = float(out.get("t_start", start))  # a child that had to start later says when it did
        return Round(start, float(out.get("t_end", start + duration)), float(out.get("rate") or 0.0)), out

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        if self.err is not subprocess.DEVNULL:
            self.err.close()


def venv_python(name: str, packages: list[str], pip_args: tuple[str, ...] = ()) -> Path:
    """A throwaway virtualenv ``$TMPDIR/<name>`` with ``packages`` (kept between runs to save the download;
    delete it to start over); nothing of it enters Gold Bean's own environment."""
    venv = Path(tempfile.gettempdir()) / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    want = " ".join(packages + list(pip_args))
    if not stamp.exists() or stamp.read_text().strip() != want:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pip_args, *packages], check=True,
                       capture_output=True, timeout=900)
        stamp.write_text(want)
    return python
