"""``goldbean certificate verify``: from the code, the PDF, or offline against the published key set only."""

from __future__ import annotations

import datetime as dt
import json

from doors import books_of
from ledger import service
from tests import needs
from tests.patrol_world import build_patrol_world


def test_certificate_verify_from_pdf_code_and_offline(app, runner, client, tmp_path) -> None:
    books = books_of(app)
    pw = build_patrol_world(books)
    cert = service.issue_certificate(books, pw.w.actor("v1"), first_day=dt.date(2026, 11, 1),
                                     last_day=dt.date(2026, 11, 30))
    result = runner.invoke(args=["certificate", "verify", cert.code])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["name"] == "V1"
    needs.cjk_font()
    pdf = service.certificate_pdf(cert)
    (tmp_path / "c.pdf").write_bytes(pdf)
    assert runner.invoke(args=["certificate", "verify", str(tmp_path / "c.pdf")]).exit_code == 0
    (tmp_path / "keys.json").write_text(json.dumps(client.get("/api/v1/keys").json))
    offline = runner.invoke(args=["certificate", "verify", cert.code, "--jwks", str(tmp_path / "keys.json")])
    assert offline.exit_code == 0 and json.loads(offline.output)["minutes"] == 0
    forged = cert.code[:-6] + ("A" * 6 if not cert.code.endswith("A" * 6) else "B" * 6)
    assert runner.invoke(args=["certificate", "verify", forged]).exit_code != 0
    bad = runner.invoke(args=["certificate", "verify", forged, "--jwks", str(tmp_path / "keys.json")])
    assert bad.exit_code != 0 and "invalid_certificate" in bad.output
