"""What some tests need from the machine (a Chinese font, a PostgreSQL client program): missing, such a test
is skipped with the reason on a developer's machine and FAILS in CI, where `.ci/run` installs it and sets
``GOLDBEAN_REQUIRE_CJK_FONT=1`` / ``GOLDBEAN_REQUIRE_POSTGRES=1``: a skipped check must never pass as green."""

from __future__ import annotations

import os
import shutil

import pytest

from ledger.infra.fonts import find_cjk_font


def _missing(what: str, flag: str) -> None:
    if os.environ.get(flag) == "1":
        pytest.fail(f"{what}, but {flag}=1 (CI installs it)")
    pytest.skip(what)


def cjk_font() -> None:
    """Skip (or, in CI, fail) unless a font that renders Chinese is found, by the rule the PDFs use."""
    if find_cjk_font() is None:
        _missing("no CJK font installed (apt-get install fonts-wqy-microhei)", "GOLDBEAN_REQUIRE_CJK_FONT")


def postgres_program(name: str) -> None:
    """Skip (or, in CI, fail) unless a PostgreSQL client program such as pg_dump is on the PATH."""
    if shutil.which(name) is None:
        _missing(f"{name} is not installed (apt-get install postgresql-client)", "GOLDBEAN_REQUIRE_POSTGRES")
