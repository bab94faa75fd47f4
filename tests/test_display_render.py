"""Faces drawn for every day-one language, checked against golden PNGs and against the fonts.

Goldens live in tests/golden/display/; set MADOGUCHI_UPDATE_GOLDENS=1 to rewrite them after an
intended change (the run then writes them and fails nothing). Independently of the goldens, every
face is checked for missing glyphs, clipped lines, and (Thai, Burmese, Nepali) real shaping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from madoguchi.display.fonts import FontBook
from madoguchi.display.render import FacePlan, Placed, draw_line, plan_face, render_face
from madoguchi.display.view import FaceView, StatusLine

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "display"
UPDATE = os.environ.get("MADOGUCHI_UPDATE_GOLDENS") == "1"
LANGS = "ja en zh ko vi pt es tl ne id th my".split()
SIZES = [(256, 64), (128, 64)]
PHRASES = {e["phrase_id"]: e for e in json.loads(
    (ROOT / "firmware/madoguchi/data/phrasebook/counter.json").read_text(encoding="utf-8"))["entries"]}


def say(phrase: str, lang: str) -> str:
    return PHRASES[phrase][lang]["text"]


@pytest.fixture(scope="module")
def book() -> FontBook:
    return FontBook()


def status(own: str, other: str | None, **kw) -> StatusLine:
    base = dict(speaking=None, own_lang=own, other_lang=other, mic_level=0.4, muted=False, broker="up",
                error=None, mode="interpret")
    return StatusLine(**{**base, **kw})


def text_view(lang: str, line: StatusLine | None = None, **kw) -> FaceView:
    """The resident's face (or the clerk's, for ja) after the other side said a long sentence."""
    own = "vi" if lang == "ja" else "ja"
    return FaceView("text", line or status(own, lang), main=say("wait_until_called", lang), main_lang=lang,
                    echo=say("how_can_i_help", own), echo_lang=own, **kw)


def ink_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    return image.getbbox()


def check_plan(image: Image.Image, plan: FacePlan, size: tuple[int, int], book: FontBook) -> None:
    """No tofu, no line wider than its box, no ink outside its box or the image."""
    width, height = size
    pad = 40
    for placed in plan.lines:
        for run in placed.line.runs:
            assert book.missing(run) == "", f"{run.font.name} has no glyph for {book.missing(run)!r}"
        x0, y0, x1, y1 = placed.box
        assert 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height, (placed.line.text, placed.box)
        assert placed.line.width <= x1 - x0
        # Draw the line alone on a padded canvas: ink beyond the image would show in the padding.
        canvas = Image.new("L", (width + 2 * pad, height + 2 * pad))
        shifted = Placed(placed.line, placed.lang, placed.size, placed.x + pad, placed.baseline + pad,
                         placed.box, 255)
        draw_line(ImageDraw.Draw(canvas), shifted, book)
        ink = ink_box(canvas)
        assert ink is not None, placed.line.text
        assert (ink[0] >= x0 + pad and ink[1] >= y0 + pad and ink[2] <= x1 + pad and ink[3] <= y1 + pad), \
            (placed.line.text, [v - pad for v in ink], placed.box)


def compare_golden(image: Image.Image, name: str) -> None:
    path = GOLDEN / f"{name}.png"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, optimize=True)
        return
    assert path.exists(), f"no golden {path}; run with MADOGUCHI_UPDATE_GOLDENS=1 to create it"
    golden = Image.open(path)
    assert golden.mode == image.mode and golden.size == image.size
    diff = np.asarray(ImageChops.difference(golden, image))
    # A different FreeType build may move antialiasing by a level or two, never the layout.
    assert np.count_nonzero(diff > 24) <= image.width * image.height // 500, f"{name} differs from {path}"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
def test_face_matches_golden_and_fits(book, lang, size):
    view = text_view(lang)
    image = render_face(view, size, fonts=book)
    assert image.mode == "L" and image.size == size
    plan = plan_face(view, size, fonts=book)
    assert plan.total_lines >= 1 and plan.lines[0].line.text
    check_plan(image, plan, size, book)
    compare_golden(image, f"{lang}-{size[0]}x{size[1]}")


@pytest.mark.parametrize("lang", ["th", "my", "ne"])
def test_complex_scripts_are_shaped_by_raqm(book, lang):
    size = (256, 64)
    view = text_view(lang)
    image = render_face(view, size, fonts=book)
    plan = plan_face(view, size, fonts=book)
    main = [p for p in plan.lines if p.lang == lang]
    assert main
    for placed in main:
        (run,) = placed.line.runs  # these sentences are one script: one font
        path, index = str(book.path(run.font)), run.font.index
        expected, basic = (Image.new("L", size) for _ in range(2))
        for canvas, engine in ((expected, ImageFont.Layout.RAQM), (basic, ImageFont.Layout.BASIC)):
            font = ImageFont.truetype(path, placed.size, index=index, layout_engine=engine)
            shaping = {"language": lang} if engine == ImageFont.Layout.RAQM else {}  # BASIC knows no language
            ImageDraw.Draw(canvas).text((placed.x, placed.baseline), run.text, font=font, fill=placed.fill,
                                        anchor="ls", **shaping)
        box = placed.box
        assert image.crop(box).tobytes() == expected.crop(box).tobytes(), f"{lang}: not what raqm lays out"
        assert expected.tobytes() != basic.tobytes(), f"{lang}: raqm and basic layout agree, nothing was shaped"


def test_mixed_script_face_has_no_tofu(book):
    view = FaceView("text", status("ja", "vi"), main="Vui lòng mang thẻ マイナンバー đến quầy 3.", main_lang="vi")
    for size in SIZES:
        plan = plan_face(view, size, fonts=book)
        assert any(len(p.line.runs) > 1 for p in plan.lines)
        check_plan(render_face(view, size, fonts=book), plan, size, book)


def test_long_final_text_scrolls_with_time_and_partial_shows_the_tail(book):
    size = (128, 64)
    text = say("moving_in_14_days", "es")
    view = FaceView("text", status("ja", "es"), main=text, main_lang="es")
    plans = [plan_face(FaceView("text", view.status, main=text, main_lang="es", shown_for_s=t), size, fonts=book)
             for t in (0.0, 1.9, 2.1, 3.6, 60.0)]
    firsts = [p.first for p in plans]
    assert plans[0].total_lines > plans[0].visible_lines
    assert firsts[:4] == [0, 0, 1, 2] and firsts[4] == plans[0].total_lines - plans[0].visible_lines
    assert plans[-1].lines[-1].line.text.endswith("mudanza.")
    partial = plan_face(FaceView("text", view.status, main=text, main_lang="es", partial=True), size, fonts=book)
    assert partial.lines[-1].line.text.endswith("mudanza.") and partial.lines[0].fill < 255
    for plan in plans:
        check_plan(render_face(view, size, fonts=book), plan, size, book)


def test_idle_greeting_is_large_and_centred(book):
    size = (256, 64)
    view = FaceView("idle", status("vi", None), main="Xin chào.", main_lang="vi")
    (placed,) = plan_face(view, size, fonts=book).lines
    assert placed.size >= 24
    x0, _, x1, _ = placed.box
    assert abs(x0 - (size[0] - x1)) <= 1
    check_plan(render_face(view, size, fonts=book), plan_face(view, size, fonts=book), size, book)


def test_language_list_highlights_and_keeps_selection_visible(book):
    from madoguchi.languages import native_name

    langs = tuple(LANGS)
    view = FaceView("list", status("ja", None), items=tuple(native_name(l) for l in langs), item_langs=langs,
                    selected=10)
    for size in (*SIZES, (128, 128)):
        plan = plan_face(view, size, fonts=book)
        shown = [p.line.text for p in plan.lines]
        assert native_name("th") in shown
        (selected,) = [p for p in plan.lines if p.fill == 0]  # black on the white highlight
        assert selected.line.text == native_name("th") and plan.boxes
        check_plan(render_face(view, size, fonts=book), plan, size, book)


def test_off_dim_and_mono(book):
    size = (256, 64)
    view = text_view("en", status("ja", "en", muted=True, operator_call=True, error="mic_lost"))
    assert render_face(FaceView("off", view.status), size, fonts=book).getbbox() is None
    bright = render_face(view, size, fonts=book)
    dim = render_face(FaceView(**{**view.__dict__, "dim": True}), size, fonts=book)
    assert dim.getextrema()[1] == bright.getextrema()[1] // 2
    mono = render_face(view, size, mono=True, fonts=book)
    assert set(np.unique(np.asarray(mono))) <= {0, 255}  # nothing for a threshold to eat
    assert render_face(view, (128, 128), fonts=book).size == (128, 128)


def test_rerendering_the_same_view_is_cached(book):
    view = text_view("th")
    first = render_face(view, (256, 64), fonts=book)
    assert render_face(view, (256, 64), fonts=book).tobytes() == first.tobytes()
    assert plan_face(view, (256, 64), fonts=book) == plan_face(view, (256, 64), fonts=book)


def test_time_shown_matters_only_at_scroll_steps() -> None:
    """Views that differ only in time between two scroll steps draw the same frame: the faces draw it
    once instead of ten times a second while words stay up (the soak bench, tests/bench/soak, measured 1.2 % of a core)."""
    from madoguchi.display.render import HOLD_S, STEP_S, first_line, scroll_step_s

    times = [k * 0.05 for k in range(800)]
    assert all(first_line(total, visible, t, False) == first_line(total, visible, scroll_step_s(t), False)
               for total in range(12) for visible in range(1, 5) for t in times)
    assert {scroll_step_s(t) for t in times if t < HOLD_S} == {0.0}
    assert len({scroll_step_s(t) for t in times}) == 1 + int((times[-1] - HOLD_S) / STEP_S) + 1
