"""``madoguchi replay --frames DIR``: every frame both faces showed, as PNG, and a contact sheet.

The replay collects what happened with its audio time (``Moment``); afterwards the faces are
driven through that timeline at ``[display] frames_per_s`` on luma's dummy devices, so the PNGs
are what the panels would have been sent. A pair of frames is written whenever either face
changed: ``0007-012.30s-staff.png`` and ``0007-012.30s-resident.png``. ``contact-sheet.png``
lays the pairs out in time order, each labelled with its time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from madoguchi.config import Settings
from madoguchi.display.devices import open_panels
from madoguchi.display.faces import Faces
from madoguchi.events import Caption, FrontendEvent, Interpretation, SpeakerHeard, SpeechPaused, SpeechSoFar, SpeechStarted, Utterance, UtteranceRejected

log = logging.getLogger(__name__)

TAIL_S = 4.0  # keep drawing after the last event: the end of a scroll, the return to the greeting
SHEET_COLUMNS = 2  # pairs per row
SHEET_MAX_PAIRS = 240  # beyond this the sheet takes every n-th pair (all PNGs are still written)
LABEL_H = 14
GAP = 8


@dataclass(frozen=True)
class Moment:
    at_s: float
    item: FrontendEvent | Interpretation | Caption


def moment_of(item: FrontendEvent | Interpretation | Caption) -> Moment:
    """When the faces would have changed, in the recording's time.

    A result appears after its utterance closed plus the stages' processing time (latency_ms
    counts the endpointer's hangover too, which the close time already includes).
    """
    if isinstance(item, Interpretation):
        processing_s = max(0.0, item.timings_ms.get("latency_ms", 0.0) - item.timings_ms.get("vad_ms", 0.0)) / 1000.0
        return Moment(item.utterance.decided_at_s + processing_s, item)
    if isinstance(item, Caption):
        return Moment(item.at_s, item)
    if isinstance(item, SpeechStarted):
        return Moment(item.start_s, item)
    if isinstance(item, (SpeakerHeard, SpeechSoFar)):
        return Moment(item.at_s, item)
    if isinstance(item, Utterance):
        return Moment(item.decided_at_s, item)
    if isinstance(item, SpeechPaused):
        return Moment(item.utterance.decided_at_s, item)
    if isinstance(item, UtteranceRejected):
        return Moment(item.end_s, item)
    raise TypeError(f"not a display moment: {item!r}")


@dataclass(frozen=True)
class FramesWritten:
    pairs: int
    directory: Path
    contact_sheet: Path


def write_frames(settings: Settings, moments: Iterable[Moment], out_dir: Path, end_s: float | None = None) -> FramesWritten:
    """Drive the faces through the timeline and write every changed pair of frames."""
    out_dir.mkdir(parents=True, exist_ok=True)
    timeline = sorted(moments, key=lambda m: m.at_s)
    last_s = max([m.at_s for m in timeline] + [end_s or 0.0]) + TAIL_S
    panels = open_panels(settings.display, simulated=True)  # the configured panels' size and depth, no SPI
    faces = Faces(settings, panels)
    step = 1.0 / settings.display.frames_per_s
    pairs: list[tuple[float, Image.Image, Image.Image]] = []
    index, tick = 0, 0
    try:
        while (now := tick * step) <= last_s:
            while index < len(timeline) and timeline[index].at_s <= now:
                item = timeline[index].item
                if isinstance(item, (Interpretation, Caption)):
                    faces.said(item, now)
                else:
                    faces.heard(item, now)
                index += 1
            sent = faces.push(now)
            if any(sent.values()):
                staff, resident = (_shown(panels[side]) for side in ("staff", "resident"))
                number = len(pairs) + 1
                staff.save(out_dir / f"{number:04d}-{now:07.2f}s-staff.png")
                resident.save(out_dir / f"{number:04d}-{now:07.2f}s-resident.png")
                pairs.append((now, staff, resident))
            tick += 1
    finally:
        faces.close()
    sheet = out_dir / "contact-sheet.png"
    contact_sheet(pairs).save(sheet)
    log.info("wrote %d frame pairs and %s", len(pairs), sheet)
    return FramesWritten(len(pairs), out_dir, sheet)


def _shown(panel) -> Image.Image:
    """What the dummy device holds (as the panel would show it), or black if it sleeps."""
    if panel.asleep or panel.device.image is None:
        return Image.new("RGB", panel.size)
    return panel.device.image.convert("RGB")


def contact_sheet(pairs: list[tuple[float, Image.Image, Image.Image]]) -> Image.Image:
    """Pairs (staff | resident) in time order, labelled; a long replay is sampled evenly."""
    if not pairs:
        return _label(Image.new("RGB", (400, 40), "black"), "no frames", (4, 4))
    stride = max(1, -(-len(pairs) // SHEET_MAX_PAIRS))
    chosen = pairs[::stride]
    width, height = chosen[0][1].size
    cell_w, cell_h = 2 * width + GAP, height + LABEL_H
    rows = -(-len(chosen) // SHEET_COLUMNS)
    sheet = Image.new("RGB", (SHEET_COLUMNS * (cell_w + 2 * GAP), rows * (cell_h + GAP) + GAP), (40, 40, 48))
    for n, (at_s, staff, resident) in enumerate(chosen):
        x = (n % SHEET_COLUMNS) * (cell_w + 2 * GAP) + GAP
        y = (n // SHEET_COLUMNS) * (cell_h + GAP) + GAP
        _label(sheet, f"{at_s:7.2f} s   staff | resident", (x, y))
        sheet.paste(staff, (x, y + LABEL_H))
        sheet.paste(resident, (x + width + GAP, y + LABEL_H))
    return sheet


def _label(image: Image.Image, text: str, xy: tuple[int, int]) -> Image.Image:
    ImageDraw.Draw(image).text(xy, text, fill=(200, 200, 200))
    return image
