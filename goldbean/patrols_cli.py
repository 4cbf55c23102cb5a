"""``goldbean certificate verify FILE-or-CODE [--jwks FILE]`` and ``goldbean patrols extend``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from .cli_common import app_books, domain_errors


def _statement_of(source: str) -> str:
    """The signed statement in SOURCE: the code itself, a text file holding it, or the PDF (its QR)."""
    path = Path(source)
    if len(source) < 255 and path.is_file():
        data = path.read_bytes()
        if data.startswith(b"%PDF"):
            import pypdf
            import zxingcpp
            from PIL import Image

            for page in pypdf.PdfReader(io.BytesIO(data)).pages:
                for image in page.images:
                    for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data))):
                        return found.text
            raise click.ClickException("no QR code found in the PDF")
        return data.decode("ascii", "replace").strip()
    return source.strip()


def _offline(code: str, jwks_file: str) -> dict:
    """Verify with only a published key set (``GET /api/v1/keys``): no database, no instance keys."""
    import jwt

    from ledger.infra.keys import public_from_jwk

    keys = json.loads(Path(jwks_file).read_text())["keys"]
    try:
        kid = jwt.get_unverified_header(code).get("kid")
        jwk = next(k for k in keys if k.get("kid") == kid and k.get("purpose", "certificate") == "certificate")
        return jwt.decode(code, public_from_jwk(jwk), algorithms=["EdDSA"], audience="goldbean-patrol",
                          issuer="goldbean", options={"require": ["sub", "jti", "iat", "minutes", "from", "to"]})
    except (StopIteration, jwt.PyJWTError, ValueError):
        raise click.ClickException("invalid_certificate: this certificate is not genuine or was altered") from None


@click.group()
def certificate() -> None:
    """志愿服务记录证明: volunteers' service certificates."""


@certificate.command("verify")
@click.argument("source")
@click.option("--jwks", "jwks_file", default=None, help="verify offline against this published JWK set")
@domain_errors
def certificate_verify(source: str, jwks_file: str | None) -> None:
    """Check a certificate (its code, a file holding it, or the PDF) and print what it states."""
    code = _statement_of(source)
    if jwks_file:
        claims = _offline(code, jwks_file)
        out = {"valid": True, "volunteer_id": int(claims["sub"]), "name": claims.get("name"),
               "first_day": claims["from"], "last_day": claims["to"], "minutes": claims["minutes"],
               "records": claims.get("records")}
    else:
        out = _verify_with_instance(code)
    click.echo(json.dumps(out, ensure_ascii=False, default=str, indent=2))


def _verify_with_instance(code: str) -> dict:
    from ledger import service

    return service.verify_certificate(app_books(), code)


@click.group("patrols")
def patrols_group() -> None:
    """Patrol deployment (卫星布防)."""


@patrols_group.command("extend")
@with_appcontext
@domain_errors
def extend() -> None:
    """Expand every recurring shift up to the horizon (the worker does this hourly)."""
    from ledger import patrols

    click.echo(f"{patrols.extend_series(app_books())} shifts added")


COMMANDS: tuple[click.Command, ...] = (certificate, patrols_group)
