"""Photo checks: type from the bytes (a PNG named .jpg is a PNG; a text file named .jpg is refused), the
size and pixel caps, EXIF with GPS stripped by re-encoding, four per notice, and served only to those
who may see the notice."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ledger import radar
from ledger.errors import DomainError
from ledger.radar.photos import MAX_BYTES, clean_image
from tests.ledger.radar.radar_world import build_world, publish


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (25.0, 4.0, 12.0), "E", (102.0, 43.0, 5.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 90, 200)).save(out, "PNG")
    return out.getvalue()


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value.code


def test_gps_exif_is_stripped_and_the_type_comes_from_the_bytes():
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)  # the upload carries a position
    clean = clean_image(raw)
    img = Image.open(io.BytesIO(clean.data))
    assert clean.content_type == "image/jpeg" and (img.width, img.height) == (64, 48)
    assert not img.getexif() and b"Exif" not in clean.data and b"PhoneMaker" not in clean.data
    assert clean_image(png()).content_type == "image/jpeg"  # a PNG "named .jpg": read as what it is


def test_non_images_huge_files_and_pixel_bombs_are_refused():
    assert code_of(clean_image, "这不是图片,只是改名为 .jpg 的文本".encode()) == "photo_invalid"
    assert code_of(clean_image, b"\xff\xd8\xff" + b"\0" * 100) == "photo_invalid"  # truncated JPEG
    assert code_of(clean_image, b"\xff\xd8\xff" + b"\0" * MAX_BYTES) == "photo_invalid"  # over 5 MB
    out = io.BytesIO()
    Image.new("1", (6000, 5000)).save(out, "PNG")  # tiny file, 30 megapixels
    assert len(out.getvalue()) < MAX_BYTES
    assert code_of(clean_image, out.getvalue()) == "photo_invalid"


def test_six_megabyte_image_is_refused():
    noise = Image.frombytes("RGB", (1500, 1400), bytes(range(256)) * (1500 * 1400 * 3 // 256) + b"\0" * (
        1500 * 1400 * 3 % 256))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    data = out.getvalue() + b"\0" * max(0, 6 * 1024 * 1024 - len(out.getvalue()))
    assert len(data) >= 6 * 1024 * 1024
    assert code_of(clean_image, data) == "photo_invalid"


def test_notice_photos_are_served_only_to_those_who_may_see_the_notice(books):
    w = build_world(books)
    n = publish(w)
    ids = [radar.add_notice_photo(books, w.actor("officerA"), n.id, png()) for _ in range(4)]
    assert code_of(radar.add_notice_photo, books, w.actor("officerA"), n.id, png()) == "too_many_photos"
    assert code_of(radar.add_notice_photo, books, w.actor("officerB"), n.id, png()) == "notice_not_found"
    kind, data = radar.get_photo(books, w.actor("v1"), ids[0])
    assert kind == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    for outsider in ("v2", "v3", "cashier"):
        assert code_of(radar.get_photo, books, w.actor(outsider), ids[0]) == "not_found"
    a = radar.answer_notice(books, w.actor("v1"), n.id, text="照片里是他")
    pid = radar.add_answer_photo(books, w.actor("v1"), a.id, jpeg_with_gps())
    assert radar.get_photo(books, w.actor("officerA"), pid)[0] == "image/jpeg"
    assert code_of(radar.get_photo, books, w.actor("leader"), pid) == "not_found"  # sees the notice, not the tip
