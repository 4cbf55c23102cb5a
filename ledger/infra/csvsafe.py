"""The one CSV writer of the project: every text cell is kept from being read as a spreadsheet formula.

Excel, WPS and LibreOffice run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, after trimming, one that
starts with a tab, carriage return or line feed) as a formula, which can call out (``=HYPERLINK``, DDE). A statement
carries text that users typed (reasons, references, idempotency keys, names, item names, donation references), so
every ``str`` cell that could start a formula gets a leading apostrophe, which spreadsheets show as text and do not
display. Numbers stay numbers: only text is changed. Full-width forms (``＝＋－＠``) count too, because Chinese input
methods type them and some spreadsheet versions fold them to ASCII.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def csv_safe(value: Any) -> Any:
    """``value`` unchanged unless it is text a spreadsheet would read as a formula; then ``'`` + text."""
    if not isinstance(value, str) or not value:
        return value
    stripped = value.lstrip(" \u3000")
    if value[0] in FORMULA_STARTS or (stripped and stripped[0] in FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """``csv.writer`` whose every text cell goes through ``csv_safe``: use it for every CSV the project writes."""

    def __init__(self, out: IO[str], **kwargs: Any) -> None:
        kwargs.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_safe(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
