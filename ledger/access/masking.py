"""Personal data shown in part: a name a till may read back to the customer (``张*华``) and a phone number an
officer's list may show (``138****5678``). The one place that says how much of each is shown."""

from __future__ import annotations


def mask_name(name: str | None) -> str:
    """The first and last character with the middle starred: 张志华 → 张*华, 欧阳志华 → 欧**华, 张华 → 张*;
    a one-character name stays as it is. Spaces are kept (``Zhao Wei`` → ``Z*** **i``)."""
    text = (name or "").strip()
    if len(text) <= 1:
        return text
    if len(text) == 2:
        return text[0] + "*"
    middle = "".join(" " if ch == " " else "*" for ch in text[1:-1])
    return text[0] + middle + text[-1]


def mask_phone(phone: str | None) -> str:
    """The first three and last four digits of a mobile number: 13812345678 → 138****5678; a short number
    keeps only its last two characters."""
    text = (phone or "").strip()
    if not text:
        return ""
    if len(text) >= 11:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    return "*" * max(0, len(text) - 2) + text[-2:]
