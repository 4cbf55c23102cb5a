"""The wallet app's icons (manifest, favicon, home screen), drawn here so the repository holds only small PNGs
made by this script and nothing from a CDN: ``.venv/bin/python -m admin_ui.icons`` rewrites them.

A golden bean on the programme's brown; the maskable one keeps the bean inside the central safe circle."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent / "static" / "icons"
BROWN, GOLD, LIGHT, DARK = (138, 90, 0), (246, 190, 40), (255, 226, 130), (176, 118, 0)
SIZES = {"icon-192.png": (192, 0.78), "icon-512.png": (512, 0.78), "icon-maskable-512.png": (512, 0.56),
         "apple-touch-icon.png": (180, 0.74), "favicon-32.png": (32, 0.92)}


def draw(size: int, fill: float) -> Image.Image:
    big = size * 4  # drawn large and scaled down: smooth edges without anti-aliasing support in ImageDraw
    img = Image.new("RGB", (big, big), BROWN)
    bean = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(bean)
    w, h = big * fill, big * fill * 0.68
    box = ((big - w) / 2, (big - h) / 2, (big + w) / 2, (big + h) / 2)
    d.ellipse(box, fill=GOLD, outline=DARK, width=max(2, big // 64))
    cx, cy = big / 2, big / 2
    d.arc((cx - w * 0.30, cy - h * 0.18, cx + w * 0.30, cy + h * 0.55), 200, 340, fill=DARK, width=max(3, big // 40))
    d.ellipse((cx - w * 0.30, cy - h * 0.36, cx - w * 0.05, cy - h * 0.16), fill=LIGHT)
    img.paste(bean.rotate(-28, resample=Image.BICUBIC), (0, 0), bean.rotate(-28, resample=Image.BICUBIC))
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (size, fill) in SIZES.items():
        draw(size, fill).save(OUT / name, optimize=True)
        print(OUT / name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
