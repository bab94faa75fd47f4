"""Face rendering speed per language, the SSD1322 driver's frame send, and luma's own canvas as the peer.

    PYTHONPATH=firmware:. python -m tests.bench.display [--budget-s 20]

Each day-one language shows the phrasebook's "wait until your number is called" with an echo
line. Three kinds of frame are timed with ``render_face``:
  - steady: the same text re-rendered at 10 fps (mic level and ``shown_for_s`` move every frame),
    the common case;
  - new text: a partial transcript growing word by word, every frame a text never laid out before
    (line breaking, size search and body drawing all run);
  - 128x64 steady, for the small mono panels.
The driver column is luma.oled's ``ssd1322`` converting the frame and sending it to a no-op
serial interface (``luma.core.interface.serial.noop``): the cost on top of drawing. The peer draws
the same text with ``luma.core.render.canvas`` on a dummy device and one font (the language's
own, no fallback, no ICU line breaking, no caching). The bar: ≤ 20 ms per frame at 256x64.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from luma.core.device import dummy
from luma.core.interface.serial import noop
from luma.core.render import canvas
from luma.oled.device import ssd1322
from PIL import ImageFont

from madoguchi.display.fonts import FontBook, chain_for
from madoguchi.display.render import render_face
from madoguchi.display.view import FaceView, StatusLine
from tests.asr_assets import cpu_name

ROOT = Path(__file__).resolve().parents[2]
LANGS = "ja en zh ko vi pt es tl ne id th my".split()
BAR_MS = 20.0


def phrase(lang: str, pid: str) -> str:
    entries = json.loads((ROOT / "firmware/madoguchi/data/phrasebook/counter.json").read_text(encoding="utf-8"))["entries"]
    return next(e for e in entries if e["phrase_id"] == pid)[lang]["text"]


def view_for(lang: str, text: str, frame: int, partial: bool = False) -> FaceView:
    own = "vi" if lang == "ja" else "ja"
    status = StatusLine(speaking="resident", own_lang=own, other_lang=lang, mic_level=(frame % 10) / 10,
                        muted=False, broker="up", error=None, mode="interpret")
    return FaceView("text", status, main=text, main_lang=lang, partial=partial, shown_for_s=frame / 10,
                    echo=phrase(own, "how_can_i_help"), echo_lang=own)


def prefixes(text: str) -> list[str]:
    """A partial transcript as it grows: word by word, or 3 characters at a time in unspaced scripts."""
    if " " in text:
        words = text.split(" ")
        return [" ".join(words[:i]) for i in range(1, len(words) + 1)]
    return [text[:i] for i in range(3, len(text) + 1, 3)] + [text]


def timed(fn, *args, **kw) -> float:
    start = time.perf_counter()
    fn(*args, **kw)
    return (time.perf_counter() - start) * 1000


def pct(ms: list[float]) -> str:
    return f"{np.percentile(ms, 50):.2f} / {np.percentile(ms, 95):.2f}"


def peer_frame(device, font: ImageFont.FreeTypeFont, small: ImageFont.FreeTypeFont, view: FaceView) -> None:
    """What a luma example would do: one font, text as is, status as a plain string."""
    with canvas(device) as draw:
        draw.text((0, 0), f"{view.status.own_lang.upper()}/{view.status.other_lang.upper()}", font=small, fill="white")
        draw.text((2, 14), view.main, font=font, fill="white")
        draw.text((2, 52), view.echo, font=small, fill="white")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=20.0, help="total time to spend measuring (default 20)")
    args = parser.parse_args(argv)
    per_lang = args.budget_s / len(LANGS)

    started = time.perf_counter()
    book = FontBook()
    for lang in LANGS:  # load every font and cmap once: a box does this at start, not per frame
        render_face(view_for(lang, phrase(lang, "wait_until_called"), 0), (256, 64), fonts=book)
    load_s = time.perf_counter() - started
    oled = ssd1322(noop(), width=256, height=64)
    peer_device = dummy(width=256, height=64, mode="RGB")  # the mode luma gives an SSD1322 canvas

    rows, worst = [], 0.0
    for lang in LANGS:
        text = phrase(lang, "wait_until_called")
        deadline = time.perf_counter() + per_lang
        steady, small, growing, send, peer = [], [], [], [], []
        chain = chain_for(lang)
        font = ImageFont.truetype(str(book.path(chain[0])), 16, index=chain[0].index)
        tiny = ImageFont.truetype(str(book.path(chain[0])), 10, index=chain[0].index)
        parts = prefixes(text)
        frame = 0
        while time.perf_counter() < deadline or frame < 20:
            frame += 1
            view = view_for(lang, text, frame)
            steady.append(timed(render_face, view, (256, 64), fonts=book))
            small.append(timed(render_face, view, (128, 64), mono=True, fonts=book))
            image = render_face(view, (256, 64), fonts=book)
            send.append(timed(lambda image=image: oled.display(image.convert(oled.mode))))
            peer.append(timed(peer_frame, peer_device, font, tiny, view))
            # A text never seen: a growing partial with a frame-unique suffix defeats every cache.
            new = view_for(lang, f"{parts[frame % len(parts)]} {frame}", frame, partial=True)
            growing.append(timed(render_face, new, (256, 64), fonts=book))
        worst = max(worst, np.percentile(steady, 95), np.percentile(growing, 95))
        rows.append(f"| {lang} | {pct(steady)} | {pct(growing)} | {pct(small)} | {pct(send)} | {pct(peer)} | {frame} |")

    print(f"\nFace rendering, ms p50 / p95; CPU: {cpu_name()}; fonts and cmaps loaded in {load_s:.2f} s\n")
    print("| lang | 256x64 steady | 256x64 new text | 128x64 mono steady | SSD1322 convert+send | peer: luma canvas, 1 font | frames |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    verdict = "met" if worst <= BAR_MS else "NOT met"
    print(f"\nBar: ≤ {BAR_MS:.0f} ms per frame at 256x64 (worst p95 of steady and new-text frames: {worst:.2f} ms): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
