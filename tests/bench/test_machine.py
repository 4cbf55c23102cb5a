"""bench.machine: the steal share and the Python yardstick that every ``make bench`` report carries."""

from bench.machine import CpuTicks, cpu_ticks, python_speed_us, steal_percent

STAT_BEFORE = "cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 50 0 25 400 5 0 2 18 0 0\nintr 1 2 3\n"
STAT_AFTER = "cpu  160 0 70 900 10 0 10 85 7 0\ncpu0 80 0 35 450 5 0 5 43 4 0\n"


def test_cpu_ticks_read_the_machine_line_not_a_core() -> None:
    assert cpu_ticks(STAT_BEFORE) == CpuTicks(steal=35, total=1000)
    assert cpu_ticks(STAT_AFTER) == CpuTicks(steal=85, total=1235)  # guest time (7) is already in user


def test_steal_is_the_share_of_the_time_between_two_readings() -> None:
    assert steal_percent(cpu_ticks(STAT_BEFORE), cpu_ticks(STAT_AFTER)) == 100.0 * 50 / 235


def test_no_reading_no_figure() -> None:
    assert cpu_ticks("intr 1 2 3\n") is None
    assert steal_percent(None, CpuTicks(1, 2)) is None
    assert steal_percent(CpuTicks(1, 10), CpuTicks(1, 10)) is None  # no time passed


def test_python_speed_is_a_positive_time_per_hash() -> None:
    assert 0 < python_speed_us() < 10_000
