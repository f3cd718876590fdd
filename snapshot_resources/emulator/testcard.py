"""The picture in every emulated snapshot: a test card with the channel, uid and time on it.

A real JPG (the only snapshot format, S8) that a person can open and read, so a file found in a
bucket can be checked by eye against its name.  The colour bars are drawn once; each snapshot
copies them and writes three lines of text.  Text is the costly part, so the card with the
channel and uid lines is kept for the most recent publishers (a bounded cache: 64 cards of
170 kB) and each snapshot only adds its time: about 0.4 ms per JPG instead of 0.7 ms.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

WIDTH: Final = 320
HEIGHT: Final = 180
_BARS: Final = ((192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192),
                (192, 0, 0), (0, 0, 192))  # the SMPTE colour-bar order


@lru_cache(maxsize=1)
def _background() -> Any:
    from PIL import Image, ImageDraw  # lazy: Pillow is the emulator extra

    image = Image.new("RGB", (WIDTH, HEIGHT), (16, 16, 16))
    draw = ImageDraw.Draw(image)
    bar = WIDTH / len(_BARS)
    for index, colour in enumerate(_BARS):
        draw.rectangle((round(index * bar), 0, round((index + 1) * bar) - 1, HEIGHT // 2),
                       fill=colour)
    return image


@lru_cache(maxsize=1)
def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=16)


_TOP: Final = HEIGHT // 2 + 8
_LINE: Final = 26
_WHITE: Final = (255, 255, 255)


@lru_cache(maxsize=64)
def _card(cname: str, uid: str) -> Any:
    from PIL import ImageDraw

    image = _background().copy()
    draw = ImageDraw.Draw(image)
    draw.text((10, _TOP), f"channel {cname}", fill=_WHITE, font=_font())
    draw.text((10, _TOP + _LINE), f"uid {uid}", fill=_WHITE, font=_font())
    return image


def render_jpg(*, cname: str, uid: str, taken_at: datetime) -> bytes:
    """A JPG test card for one snapshot of ``uid``'s video in ``cname`` at ``taken_at`` (UTC)."""
    from PIL import ImageDraw

    image = _card(cname, uid).copy()
    stamp = taken_at.strftime("%Y-%m-%d %H:%M:%S.") + f"{taken_at.microsecond // 1000:03d} UTC"
    ImageDraw.Draw(image).text((10, _TOP + 2 * _LINE), stamp, fill=_WHITE, font=_font())
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()
