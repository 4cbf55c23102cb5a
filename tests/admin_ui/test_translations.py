"""The zh_CN catalogue covers every user-facing string of the pages, and the committed .mo is the .po
compiled (so `make run` needs no build step)."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LC = ROOT / "admin_ui" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def _extracted() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / "admin_ui"), method_map, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_of_the_pages_has_a_chinese_translation() -> None:
    catalog = read_po(open(LC / "messages.po", "rb"))
    translated = {m.id for m in catalog if m.id and m.string}
    missing = sorted(_extracted() - translated)
    assert len(_extracted()) > 300
    assert not missing, f"add these to {LC / 'messages.po'} and recompile: {missing}"


def test_the_committed_mo_is_the_compiled_po() -> None:
    po = read_po(open(LC / "messages.po", "rb"))
    mo = read_mo(open(LC / "messages.mo", "rb"))
    assert {m.id: m.string for m in po if m.id} == {m.id: m.string for m in mo if m.id}
    buf = io.BytesIO()
    write_mo(buf, po)
    assert buf.getvalue()


def test_placeholders_survive_translation() -> None:
    import re

    for m in read_po(open(LC / "messages.po", "rb")):
        if m.id:
            assert sorted(re.findall(r"%\(\w+\)s", m.id)) == sorted(re.findall(r"%\(\w+\)s", m.string)), m.id
