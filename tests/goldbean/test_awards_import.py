"""`goldbean awards import FILE`: a dry run by default, all-or-nothing, idempotent."""

from __future__ import annotations

from sqlalchemy import func, select

from doors import books_of
from ledger.schema import Award, Transfer
from tests.earning_world import build_world

ROSTER = """username,community,hours,amount,reference,reason
v1,d.a.c1,3,,roster 2026-11-26 night,night patrol
v3,d.a.c2,,25,roster 2026-11-26 night,night patrol
leader,d.a.c1.g1,2,,roster 2026-11-26 night,night patrol
v1,d.a.c1,,150,police case PL-77,major tip
"""


def gb(runner, args):
    from goldbean.cli import main

    return runner.invoke(main, args)


def counts(books):
    with books.session(readonly=True) as s:
        return (s.scalar(select(func.count()).select_from(Award)),
                s.scalar(select(func.count()).select_from(Transfer)))


def test_dry_run_commit_and_idempotent(app, runner, tmp_path):
    books = books_of(app)
    build_world(books)
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    before = counts(books)

    dry = gb(runner, ["awards", "import", str(path), "--officer", "officerA"])
    assert dry.exit_code == 0, dry.output
    assert "would award 30 beans to v1" in dry.output and "held for a second officer" in dry.output
    assert "dry run: 4 awards, 225 beans" in dry.output
    assert counts(books) == before

    done = gb(runner, ["awards", "import", str(path), "--officer", "officerA", "--commit"])
    assert done.exit_code == 0, done.output
    assert "committed: 4 awards, 225 beans" in done.output
    after = counts(books)
    assert after[0] == before[0] + 4

    again = gb(runner, ["awards", "import", str(path), "--officer", "officerA", "--commit"])
    assert again.exit_code == 0, again.output
    assert again.output.count("already imported") == 4 and "committed: 0 awards" in again.output
    assert counts(books) == after


def test_any_bad_row_imports_nothing(app, runner, tmp_path):
    books = books_of(app)
    build_world(books)
    path = tmp_path / "bad.csv"
    path.write_text("username,community,amount,reference\nv1,d.a.c1,10,r\nv2,d.b.c3,10,r\nnobody,d.a.c1,5,r\n"
                    "v1,d.a.c1,ten,r\n", encoding="utf-8")
    before = counts(books)
    out = gb(runner, ["awards", "import", str(path), "--officer", "officerA", "--commit"])
    assert out.exit_code == 2
    assert "row 2: ERROR out_of_scope" in out.output  # officerA does not serve 金星 (street B)
    assert "row 3: ERROR not_a_volunteer" in out.output
    assert "row 4: ERROR validation_failed" in out.output
    assert counts(books) == before
    missing = gb(runner, ["awards", "import", str(path), "--officer", "ghost"])
    assert missing.exit_code == 2 and "user_not_found" in missing.output


def test_chinese_excel_files_are_read_and_others_refused_clearly(app, runner, tmp_path):
    """Chinese Excel saves CSV as GBK; UTF-8 with a byte-order mark is its "CSV UTF-8"; both import the same.
    UTF-16 ("Unicode text") and binary files get a one-line refusal, never a traceback."""
    books = books_of(app)
    build_world(books)
    roster = ROSTER.replace("night patrol", "夜间巡逻")
    for name, data in (("gbk.csv", roster.encode("gbk")), ("gb18030.csv", roster.encode("gb18030")),
                       ("bom.csv", b"\xef\xbb\xbf" + roster.encode("utf-8"))):
        path = tmp_path / name
        path.write_bytes(data)
        dry = gb(runner, ["awards", "import", str(path), "--officer", "officerA"])
        assert dry.exit_code == 0, (name, dry.output)
        assert "dry run: 4 awards, 225 beans" in dry.output, name
    for name, data in (("utf16.csv", roster.encode("utf-16")), ("binary.csv", bytes(range(256)) * 4)):
        path = tmp_path / name
        path.write_bytes(data)
        refused = gb(runner, ["awards", "import", str(path), "--officer", "officerA"])
        assert refused.exit_code == 2 and refused.exception is None or isinstance(refused.exception, SystemExit)
        assert "error: unreadable_file:" in refused.output and "Traceback" not in refused.output
