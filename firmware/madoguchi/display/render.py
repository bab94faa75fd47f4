"""Draw a ``FaceView`` into a greyscale image: status line on top, the words, an echo line below.

Drawing is split in two: ``plan_face`` decides where every line of text goes (pure, cached, and
what the tests check for clipping and shaping), and ``render_face`` paints it. The body (all but
the status line) only changes when the text or the scroll position does, so it is painted once
and copied; a view re-rendered at 10 fps with a moving mic level only redraws the status line.

Scrolling of long final text is a pure function of ``view.shown_for_s`` (``first_line``): the
first lines are held ``HOLD_S``, then the text moves up one line every ``STEP_S`` until the last
line is shown. Partial text always shows its newest lines.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw

from madoguchi.display.fonts import FontBook
from madoguchi.display.layout import Line, Metrics, line_of, metrics, wrap
from madoguchi.display.view import FaceView, StatusLine
from madoguchi.languages import RIGHT_TO_LEFT

log = logging.getLogger(__name__)

HOLD_S = 2.0  # the first screenful stays this long before long text scrolls
STEP_S = 1.5  # then one line more every STEP_S
GAP = 1  # pixels between lines

WHITE, PARTIAL_GREY, ECHO_GREY = 255, 170, 150  # partial text is still changing: drawn dimmer
_HALF = [v // 2 for v in range(256)]
# FreeType faces are not safe to use from two threads at once, and both faces share the fonts.
_DRAWING = threading.Lock()


@dataclass(frozen=True)
class Panel:
    """The face layout of one panel size."""

    status_h: int  # the status band, its separator line included
    status_size: int
    sizes: tuple[int, ...]  # main text sizes, largest first; the last is the smallest legible
    echo_size: int
    list_rows: int
    margin: int  # left and right


def panel_for(size: tuple[int, int]) -> Panel:
    width, height = size
    if height >= 128:  # SSD1351 128x128 colour
        return Panel(13, 10, (32, 28, 24, 22, 20, 18, 16, 14), 12, 6, 2)
    if width >= 256:  # SSD1322 256x64, the default
        return Panel(12, 10, (32, 28, 24, 22, 20, 18, 16, 14), 11, 3, 2)
    return Panel(11, 9, (24, 20, 18, 16, 14, 13, 12), 10, 3, 1)  # SSD1306/SH1106 128x64


@dataclass(frozen=True)
class Placed:
    """One line where it is drawn: pen origin (x, baseline) and the box its ink must stay in."""

    line: Line
    lang: str
    size: int
    x: int
    baseline: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    fill: int


@dataclass(frozen=True)
class FacePlan:
    """What the body of a face shows: placed lines, highlight boxes, and the text's line counts."""

    lines: tuple[Placed, ...]
    boxes: tuple[tuple[tuple[int, int, int, int], int], ...] = ()  # (box, fill): the list's selected row
    total_lines: int = 0  # lines of the main text
    visible_lines: int = 0  # how many fit at once
    first: int = 0  # index of the first line shown


def first_line(total: int, visible: int, shown_for_s: float, partial: bool) -> int:
    """The first line shown of ``total``: the tail of partial text, else scrolled by time shown."""
    last = max(0, total - visible)
    if partial:
        return last
    if shown_for_s < HOLD_S:
        return 0
    return min(last, 1 + int((shown_for_s - HOLD_S) / STEP_S))


def scroll_step_s(shown_for_s: float) -> float:
    """``shown_for_s`` rounded down to the last moment ``first_line`` could change: views that differ
    only in time between two scroll steps draw the same frame (and the faces draw it once)."""
    if shown_for_s < HOLD_S:
        return 0.0
    return HOLD_S + int((shown_for_s - HOLD_S) / STEP_S) * STEP_S


def scroll_end_s(total: int, visible: int) -> float:
    """When the last line of final text comes into view (0 when it fits): the earliest moment it was all shown."""
    extra = max(0, total - visible)
    return 0.0 if extra == 0 else HOLD_S + (extra - 1) * STEP_S


def render_face(view: FaceView, size: tuple[int, int], *, mono: bool = False, fonts: FontBook) -> Image.Image:
    """Draw ``view`` as a mode "L" image of ``size``; ``mono`` for 1-bit panels (no antialiasing, no greys)."""
    if view.screen == "off":
        return Image.new("L", size, 0)
    with _DRAWING:
        plan = plan_face(view, size, mono=mono, fonts=fonts)
        image = _body(plan, size, mono, fonts).copy()
        draw = ImageDraw.Draw(image)
        draw.fontmode = "1" if mono else "L"
        draw_status(draw, view.status, size, panel_for(size), mono, fonts)
    if view.dim and not mono:  # a 1-bit panel has no half brightness: the device lowers its contrast
        image = image.point(_HALF)
    return image


def plan_face(view: FaceView, size: tuple[int, int], *, mono: bool = False, fonts: FontBook) -> FacePlan:
    """Where every line of the body goes (cached: only ``shown_for_s`` changes frame to frame)."""
    if view.screen == "off":
        return FacePlan(())
    if view.screen == "list":
        return _plan_list(view.items, view.item_langs, view.selected, size, mono, fonts)
    text_fill = WHITE if mono or not view.partial else PARTIAL_GREY
    if view.screen == "idle":
        lines, m, top, bottom = _fit_main(view.main, view.main_lang, size, "", "", fonts)
        return _place_text(lines, m, view.main_lang, size, top, bottom, 0, text_fill, centre=True)
    lines, m, top, bottom = _fit_main(view.main, view.main_lang, size, view.echo, view.echo_lang, fonts)
    visible = max(1, (bottom - top + GAP) // m.pitch)
    first = first_line(len(lines), visible, view.shown_for_s, view.partial)
    plan = _place_text(lines, m, view.main_lang, size, top, bottom, first, text_fill, centre=False)
    if view.echo:
        echo = _place_echo(view.echo, view.echo_lang, size, WHITE if mono else ECHO_GREY, fonts)
        plan = FacePlan(plan.lines + (echo,), (), plan.total_lines, plan.visible_lines, plan.first)
    return plan


@lru_cache(maxsize=256)
def _fit_main(text: str, lang: str, size: tuple[int, int], echo: str, echo_lang: str, fonts: FontBook
              ) -> tuple[tuple[Line, ...], Metrics, int, int]:
    """The largest size at which ``text`` fits the main area whole, else the smallest (it scrolls)."""
    width, height = size
    panel = panel_for(size)
    top, bottom = panel.status_h, height
    if echo:
        bottom -= _echo_metrics(echo, echo_lang, size, fonts).pitch
    avail = width - 2 * panel.margin
    # One measurement of the whole text skips sizes that cannot fit without wrapping them.
    largest = panel.sizes[0]
    full = line_of(text, lang, largest, fonts).width
    for s in panel.sizes:
        m = metrics((), lang, s, fonts)
        if math.ceil(full * s / largest / avail) * m.pitch - GAP > bottom - top:
            continue
        lines = wrap(text, lang, avail, s, fonts)
        m = metrics(lines, lang, s, fonts, GAP)
        if len(lines) * m.pitch - GAP <= bottom - top:
            return lines, m, top, bottom
    s = panel.sizes[-1]
    lines = wrap(text, lang, avail, s, fonts)
    return lines, metrics(lines, lang, s, fonts, GAP), top, bottom


def _place_text(lines: tuple[Line, ...], m: Metrics, lang: str, size: tuple[int, int], top: int, bottom: int,
                first: int, fill: int, *, centre: bool) -> FacePlan:
    width, _ = size
    margin = panel_for(size).margin
    visible = max(1, (bottom - top + GAP) // m.pitch)
    shown = lines[first:first + visible]
    block = len(shown) * m.pitch - GAP
    y = top + max(0, (bottom - top - block) // 2) if len(lines) <= visible else top
    placed = []
    for line in shown:
        x = (width - line.width) // 2 if centre else width - margin - line.width if lang in RIGHT_TO_LEFT else margin
        placed.append(Placed(line, lang, m.size, x + line.left, y + m.ascent,
                             (x, y, x + line.width, y + m.ascent + m.descent), fill))
        y += m.pitch
    return FacePlan(tuple(placed), (), len(lines), visible, first)


@lru_cache(maxsize=64)
def _echo_metrics(text: str, lang: str, size: tuple[int, int], fonts: FontBook) -> Metrics:
    s = panel_for(size).echo_size
    return metrics((_echo_line(text, lang, size, fonts),), lang, s, fonts, GAP)


@lru_cache(maxsize=64)
def _echo_line(text: str, lang: str, size: tuple[int, int], fonts: FontBook) -> Line:
    """The echo is one line: the start of the speaker's words, with an ellipsis when they go on."""
    panel = panel_for(size)
    avail = size[0] - 2 * panel.margin
    lines = wrap(text, lang, avail, panel.echo_size, fonts)
    if len(lines) == 1:
        return lines[0]
    ellipsis = line_of("…", lang, panel.echo_size, fonts).width
    head = wrap(lines[0].text, lang, avail - ellipsis, panel.echo_size, fonts)[0]
    return line_of(head.text + "…", lang, panel.echo_size, fonts)


def _place_echo(text: str, lang: str, size: tuple[int, int], fill: int, fonts: FontBook) -> Placed:
    width, height = size
    margin = panel_for(size).margin
    line = _echo_line(text, lang, size, fonts)
    m = _echo_metrics(text, lang, size, fonts)
    baseline = height - m.descent
    x = width - margin - line.width if lang in RIGHT_TO_LEFT else margin
    return Placed(line, lang, m.size, x + line.left, baseline,
                  (x, baseline - m.ascent, x + line.width, height), fill)


@lru_cache(maxsize=32)
def _plan_list(items: tuple[str, ...], langs: tuple[str, ...], selected: int, size: tuple[int, int], mono: bool,
               fonts: FontBook) -> FacePlan:
    """The language list: each name in its own script, the selected row inverted and kept in view."""
    width, height = size
    panel = panel_for(size)
    top = panel.status_h
    rows = min(panel.list_rows, len(items)) or 1
    row_h = (height - top) // panel.list_rows
    avail = width - 2 * panel.margin - 2
    langs = tuple(langs) + ("en",) * (len(items) - len(langs))
    # One size for all rows: the largest at which every name fits its row, in height and width.
    # Names never change, so their own ink sizes the rows (no probe); tall scripts may go below
    # the text sizes, to 10 px, rather than out of their row.
    for s in sorted({x for x in (*panel.sizes, 12, 11, 10) if x <= row_h}, reverse=True):
        fitted = [(line_of(t, l, s, fonts), metrics((line_of(t, l, s, fonts),), l, s, fonts, 0, probe=False))
                  for t, l in zip(items, langs)]
        if all(ln.width <= avail and m.pitch <= row_h for ln, m in fitted):
            break
    first = min(max(0, selected - rows // 2), max(0, len(items) - rows))
    placed, boxes = [], []
    for row, index in enumerate(range(first, min(len(items), first + rows))):
        line, m = fitted[index]
        if line.width > avail:  # even the smallest size is too wide: show what fits
            line = wrap(line.text, langs[index], avail, s, fonts)[0]
        y0 = top + row * row_h
        baseline = y0 + (row_h - m.ascent - m.descent) // 2 + m.ascent
        x = panel.margin + 1
        fill = WHITE
        if index == selected:
            boxes.append(((0, y0, width, y0 + row_h), WHITE))
            fill = 0
        placed.append(Placed(line, langs[index], s, x + line.left, baseline,
                             (x, baseline - m.ascent, x + line.width, baseline + m.descent), fill))
    return FacePlan(tuple(placed), tuple(boxes), len(items), rows, first)


@lru_cache(maxsize=32)
def _body(plan: FacePlan, size: tuple[int, int], mono: bool, fonts: FontBook) -> Image.Image:
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1" if mono else "L"
    for box, fill in plan.boxes:
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=fill)
    for placed in plan.lines:
        draw_line(draw, placed, fonts)
    return image


def draw_line(draw: ImageDraw.ImageDraw, placed: Placed, fonts: FontBook) -> None:
    """Draw a placed line run by run; each run is shaped by raqm with its own font."""
    x: float = placed.x
    for run in placed.line.runs:
        font = fonts.font(run.font, placed.size)
        draw.text((x, placed.baseline), run.text, font=font, fill=placed.fill, anchor="ls", language=placed.lang)
        x += font.getlength(run.text, language=placed.lang)


def draw_status(draw: ImageDraw.ImageDraw, status: StatusLine, size: tuple[int, int], panel: Panel, mono: bool,
                fonts: FontBook) -> None:
    """The status band: mic level, who speaks, languages and mode on the left; marks on the right.

    Narrow panels get one-letter labels. Everything is ASCII in Noto Sans: it must stay legible
    at 9-10 px, so the marks are drawn as boxes and bars rather than symbols.
    """
    width = size[0]
    h, wide = panel.status_h, width >= 256
    grey = WHITE if mono else 110
    bottom = h - 3  # the band's content rows are 0 … h-3; h-1 is the separator
    if mono:  # a dotted separator: a solid white line is too loud on a 1-bit panel
        draw.point([(x, h - 1) for x in range(0, width, 2)], fill=WHITE)
    else:
        draw.line((0, h - 1, width - 1, h - 1), fill=grey)
    bar = 20 if wide else 12
    draw.rectangle((0, 2, bar - 1, bottom - 1), outline=grey)
    level = 0.0 if status.muted else min(1.0, max(0.0, status.mic_level))
    if level > 0:
        draw.rectangle((1, 3, 1 + round((bar - 3) * level), bottom - 2), fill=WHITE)
    x = bar + 3
    if status.speaking:
        label = {"staff": "STAFF", "resident": "RESIDENT"}[status.speaking] if wide else status.speaking[0].upper()
        x = _label(draw, x, label, True, panel, fonts) + 3
    langs = f"{status.own_lang.upper()}/{(status.other_lang or '?').upper()}"
    mode = {"caption": "CC", "easy_japanese": "EASY" if wide else "E"}.get(status.mode)
    left_end = _label(draw, x, f"{langs} {mode}" if mode else langs, False, panel, fonts)

    right = width
    if status.broker != "off":  # a small diamond: filled when linked, hollow and crossed when not
        c, r, mid = right - 4, 3, (bottom + 1) // 2
        diamond = [(c, mid - r), (c + r, mid), (c, mid + r), (c - r, mid)]
        if status.broker == "up":
            draw.polygon(diamond, fill=WHITE)
        else:
            draw.polygon(diamond, outline=grey)
            draw.line((c - r, mid + r, c + r, mid - r), fill=WHITE)
        right -= 2 * r + 4
    closed = ("PRIV" if wide else "P") if status.private else ("MUTE" if wide else "M")
    for on, text in ((status.muted, closed), (status.operator_call, "CALL" if wide else "OP")):
        if on:
            right -= _measure(text, panel, fonts) + 4
            _label(draw, right, text, True, panel, fonts)
            right -= 2
    if status.error:
        text = "!" + status.error
        while text and _measure(text, panel, fonts) > right - left_end - 4:
            text = text[:-1]  # error codes are ASCII: cutting characters is safe
        if text:
            _label(draw, right - _measure(text, panel, fonts) - 1, text, False, panel, fonts)


def _measure(text: str, panel: Panel, fonts: FontBook) -> int:
    return line_of(text, "en", panel.status_size, fonts).width


def _label(draw: ImageDraw.ImageDraw, x: int, text: str, inverted: bool, panel: Panel, fonts: FontBook) -> int:
    """Draw a status label at ``x`` (inverted: black on a white box); return where it ends."""
    line = line_of(text, "en", panel.status_size, fonts)
    bottom = panel.status_h - 3
    if inverted:
        draw.rectangle((x, 0, x + line.width + 3, bottom), fill=WHITE)
        x += 2
    placed = Placed(line, "en", panel.status_size, x + line.left, bottom - 1, (x, 0, x + line.width, bottom),
                    0 if inverted else WHITE)
    draw_line(draw, placed, fonts)
    return x + line.width + (2 if inverted else 0)
