"""Reading QR codes in tests: QR symbols only (``formats=QRCode``), exactly one per image.

Without ``formats`` zxing-cpp tries every symbology and once in a few runs found a spurious second symbol
(a 1-D barcode "seen" in the QR's modules or beside it), which made a card test flaky."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image


def read_qrs(image: bytes | Image.Image) -> list[str]:
    picture = image if isinstance(image, Image.Image) else Image.open(io.BytesIO(image))
    return [r.text for r in zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)]


def decode_qr(image: bytes | Image.Image) -> str:
    """The text of the one QR code in ``image`` (PNG bytes or a PIL image)."""
    found = read_qrs(image)
    assert len(found) == 1, found
    return found[0]
