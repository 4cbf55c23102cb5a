"""The 志愿服务记录证明 PDF: its text holds the hours, its QR decodes (zxing-cpp) to a statement that verifies
offline with only the published public key (the JWK set), and one changed digit fails."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json

import jwt
import pytest

from ledger import patrols, service
from ledger.errors import DomainError
from ledger.infra.keys import public_from_jwk
from tests import needs
from tests.patrol_world import build_patrol_world


def _patrolled(books, clock):
    pw = build_patrol_world(books)
    v1 = pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end
    patrols.check_out(books, v1, pw.shift_id, pw.by_code())
    return pw, v1


def test_the_pdf_holds_the_hours_and_a_qr_that_verifies_offline(books, clock) -> None:
    pypdf = pytest.importorskip("pypdf")
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    pw, v1 = _patrolled(books, clock)
    cert = service.issue_certificate(books, v1, first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 30))
    needs.cjk_font()
    pdf = service.certificate_pdf(cert)
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    text = page.extract_text()
    assert "志愿服务记录证明" in text and "2.00" in text and "120" in text
    [image] = page.images
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)))
    assert found.text == cert.code
    # offline: only the published key set, no database, no Gold Bean code
    published = [k for k in books.keys.jwks("certificate")["keys"]]
    kid = jwt.get_unverified_header(found.text)["kid"]
    key = public_from_jwk(next(k for k in published if k["kid"] == kid))
    claims = jwt.decode(found.text, key, algorithms=["EdDSA"], audience="goldbean-patrol", issuer="goldbean")
    assert claims["minutes"] == 120 and claims["name"] == "V1"
    head, body, sig = found.text.split(".")
    altered = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    altered["minutes"] = 121
    forged = base64.urlsafe_b64encode(json.dumps(altered, separators=(",", ":")).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{forged}.{sig}", key, algorithms=["EdDSA"], audience="goldbean-patrol", issuer="goldbean")
    with pytest.raises(DomainError) as exc:
        service.verify_certificate(books, f"{head}.{forged}.{sig}")
    assert exc.value.code == "invalid_certificate"


def test_a_payment_code_or_post_sign_is_not_a_certificate(books, clock) -> None:
    pw = build_patrol_world(books)
    with pytest.raises(DomainError) as exc:
        service.verify_certificate(books, pw.sign())
    assert exc.value.code == "invalid_certificate"
