"""Photos of notices (up to four), of answers (one) and of public reports (one).

An upload is checked by its bytes, not its name: JPEG, PNG or WebP by magic number, at most 5 MB, at
most 24 megapixels (read from the header before any pixel is decoded: no decompression bombs). It is then
re-encoded from its pixels alone, so EXIF (with GPS), XMP, ICC and comments never survive: a place is
shared only as the words the uploader typed. Stored in the database (never under the web root) and served
only to whoever may see what it belongs to.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import earning, errors
from ledger.access import policy
from ledger.access.identity import Actor, in_scope
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.radar.models import Answer, Notice, Photo, Report
from ledger.radar.notices import area_of, visible_notice

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 24_000_000
MAX_SIDE = 2048  # re-encoded photos are scaled to fit: enough to recognise a face or a plate on a phone
PER_NOTICE = 4
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))


@dataclass(frozen=True)
class CleanImage:
    content_type: str
    width: int
    height: int
    data: bytes


def _format_of(data: bytes) -> str | None:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def clean_image(data: Any) -> CleanImage:
    """The upload re-encoded from its pixels, or ``photo_invalid``."""
    if not isinstance(data, bytes | bytearray) or not data or len(data) > MAX_BYTES:
        raise DomainError(errors.PHOTO_INVALID, max_bytes=MAX_BYTES)
    kind = _format_of(bytes(data))
    if kind is None:
        raise DomainError(errors.PHOTO_INVALID, "not a JPEG, PNG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[kind])
            if img.width * img.height > MAX_PIXELS:
                raise DomainError(errors.PHOTO_INVALID, "too many pixels", max_pixels=MAX_PIXELS)
            img.load()
            img = ImageOps.exif_transpose(img)  # keep the photo upright once its EXIF is gone
    except DomainError:
        raise
    except Exception:  # truncated, corrupt, a bomb: Pillow raises many kinds
        raise DomainError(errors.PHOTO_INVALID, "the image cannot be read") from None
    alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    mode = "RGBA" if alpha else "RGB"
    pixels = img.convert(mode)
    pixels.thumbnail((MAX_SIDE, MAX_SIDE))
    bare = Image.frombytes(mode, pixels.size, pixels.tobytes())  # pixels only: no info, no EXIF
    out = io.BytesIO()
    if alpha:
        bare.save(out, "PNG", optimize=True)
    else:
        bare.save(out, "JPEG", quality=85)
    return CleanImage("image/png" if alpha else "image/jpeg", bare.width, bare.height, out.getvalue())


def store_in(s: Session, image: CleanImage, **owner: int) -> Photo:
    photo = Photo(content_type=image.content_type, width=image.width, height=image.height, data=image.data,
                  sha256=hashlib.sha256(image.data).hexdigest(), **owner)
    s.add(photo)
    s.flush()
    return photo


def photo_ids(s: Session, **owner: int) -> list[int]:
    (column, value), = owner.items()
    return list(s.scalars(select(Photo.id).where(getattr(Photo, column) == value).order_by(Photo.id)))


def add_notice_photo(books: Books, actor: Actor, notice_id: Any, data: bytes) -> int:
    """An officer in scope adds a photo to an open notice (at most four)."""
    image = clean_image(data)

    def work(s: Session) -> int:
        n = visible_notice(s, actor, notice_id, lock=True)
        policy.require_officer_over(s, actor, area_of(s, n.id))
        if n.status == "closed":
            raise DomainError(errors.NOTICE_NOT_OPEN)
        if s.scalar(select(func.count()).select_from(Photo).where(Photo.notice_id == n.id)) >= PER_NOTICE:
            raise DomainError(errors.TOO_MANY_PHOTOS, max=PER_NOTICE)
        return store_in(s, image, notice_id=n.id).id

    return books.run(work)


def add_answer_photo(books: Books, actor: Actor, claim_id: Any, data: bytes) -> int:
    """The volunteer adds the one photo of their own undecided answer (named by its claim's id)."""
    image = clean_image(data)

    def work(s: Session) -> int:
        a = s.scalar(select(Answer).where(Answer.claim_id == claim_id)) if type(claim_id) is int else None
        if a is None or a.volunteer_id != actor.user_id:
            raise DomainError(errors.ANSWER_NOT_FOUND)
        if earning.claim_view_in(s, actor, a.claim_id).status != "submitted":
            raise DomainError(errors.CLAIM_ALREADY_DECIDED)
        if photo_ids(s, answer_id=a.id):
            raise DomainError(errors.TOO_MANY_PHOTOS, max=1)
        return store_in(s, image, answer_id=a.id).id

    return books.run(work)


def _may_see_photo(s: Session, actor: Actor, p: Photo) -> bool:
    if p.notice_id is not None:
        try:
            visible_notice(s, actor, p.notice_id)
            return True
        except DomainError:
            return False
    if p.answer_id is not None:  # the tip's photo: as the tip's text (the volunteer, the deciding officers)
        a = s.get(Answer, p.answer_id)
        n = s.get(Notice, a.notice_id) if a else None
        return a is not None and n is not None and (
            policy.may_decide(s, actor, area_of(s, n.id)) or earning.claim_view_in(s, actor, a.claim_id).details
            is not None)
    r = s.get(Report, p.report_id)
    return r is not None and actor.has_role("officer") and (
        actor.is_district_wide("officer") or (r.org_unit_id is not None and in_scope(s, actor, "officer", r.org_unit_id)))


def get_photo(books: Books, actor: Actor, photo_id: Any) -> tuple[str, bytes]:
    """A photo's type and bytes, for whoever may see what it belongs to; anyone else: ``not_found``."""
    def work(s: Session) -> tuple[str, bytes]:
        p = s.get(Photo, photo_id) if type(photo_id) is int else None
        if p is None or not _may_see_photo(s, actor, p):
            raise DomainError(errors.NOT_FOUND_ERR)
        return p.content_type, bytes(p.data)

    return books.run(work, readonly=True)


def notice_photo_ids(books: Books, actor: Actor, notice_id: Any) -> list[int]:
    return books.run(lambda s: photo_ids(s, notice_id=visible_notice(s, actor, notice_id).id), readonly=True)
