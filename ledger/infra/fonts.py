"""Where a font that renders Chinese is found, for every PDF the rooms make (statements, my-data exports,
service certificates): one rule in one place."""

from __future__ import annotations

import os
from pathlib import Path

# where a CJK font usually lives (Debian/Ubuntu packages, macOS, Windows); GOLDBEAN_CJK_FONT wins
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/google-droid/DroidSansFallback.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/simsun.ttc",
)


def bundled_cjk_font() -> Path | None:
    """WenQuanYi Micro Hei as installed with the project (the ``paperang-p2-fonts-cjk`` wheel), if it is."""
    try:
        from importlib.resources import files

        path = Path(str(files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc"))
    except (ImportError, ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def find_cjk_font() -> Path | None:
    """A font that renders Chinese: ``GOLDBEAN_CJK_FONT``, else the one installed with the project, else the
    first well-known system path that exists."""
    configured = os.environ.get("GOLDBEAN_CJK_FONT")
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    bundled = bundled_cjk_font()
    if bundled is not None:
        return bundled
    for candidate in CJK_FONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    return None
