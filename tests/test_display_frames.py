"""``replay --frames``: every frame of both faces through luma's dummy devices, and a contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from madoguchi.config import Settings
from madoguchi.display.fonts import FontBook
from madoguchi.display.frames import Moment, moment_of, write_frames
from madoguchi.display.render import render_face
from madoguchi.display.view import FaceView, StatusLine
from madoguchi.events import Interpretation, SpeechStarted, Translation, Utterance

SETTINGS = Settings()  # SSD1322 256x64, as the box ships


def interpretation(side: str, start: float, lang: str, text: str, target: str, translated: str) -> Interpretation:
    utterance = Utterance(start, start + 1.5, side, 270.0, 0.0, 0.8, False, start + 1.8, "silence", start - 0.2, np.zeros(16, np.float32))
    return Interpretation(utterance, side, lang, text, Translation(translated, lang, target, "phrasebook"), None, 0.9, {"vad_ms": 300.0, "latency_ms": 1000.0})


@pytest.fixture(scope="module")
def fonts() -> FontBook:
    return FontBook()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    staff = interpretation("staff", 1.0, "ja", "少々お待ちください。", "en", "Please wait a moment.")
    resident = interpretation("resident", 5.0, "en", "Thank you.", "ja", "ありがとうございます。")
    moments = [moment_of(SpeechStarted(1.0)), moment_of(staff), moment_of(SpeechStarted(5.0)), moment_of(resident)]
    out = tmp_path_factory.mktemp("frames")
    return write_frames(SETTINGS, moments, out, end_s=8.0), staff, resident


def pngs(directory: Path, face: str) -> list[Path]:
    return sorted(directory.glob(f"*-{face}.png"))


def test_a_result_appears_when_its_processing_ends() -> None:
    staff = interpretation("staff", 1.0, "ja", "はい。", "en", "Yes.")
    assert moment_of(staff) == Moment(pytest.approx(2.5 + 0.3 + 0.7), staff)  # closed at 2.8 s, then 0.7 s of ASR and MT


def test_every_changed_frame_is_written_for_both_faces(written) -> None:
    result, _, _ = written
    staff, resident = pngs(result.directory, "staff"), pngs(result.directory, "resident")
    assert len(staff) == len(resident) == result.pairs >= 3  # greeting, the clerk's words, the resident's
    assert [p.name.split("-")[:2] for p in staff] == [p.name.split("-")[:2] for p in resident]
    assert all(Image.open(p).size == (256, 64) for p in staff + resident)


def test_the_resident_face_shows_the_clerks_words_in_the_residents_language(written, fonts) -> None:
    result, staff, _ = written
    shown_at = moment_of(staff).at_s
    after = [p for p in pngs(result.directory, "resident") if float(p.name.split("-")[1].rstrip("s")) >= shown_at]
    # Before the resident has spoken, the face names the language its words were put in, as a guess.
    status = StatusLine(speaking=None, own_lang="en?", other_lang="ja", mic_level=0.0, muted=False, broker="off", error=None, mode="interpret")
    expected = render_face(FaceView("text", status, main="Please wait a moment.", main_lang="en"), (256, 64), fonts=fonts).convert("RGB")
    assert ImageChops.difference(Image.open(after[0]).convert("RGB"), expected).getbbox() is None


def test_the_contact_sheet_lays_out_every_pair(written) -> None:
    result, _, _ = written
    sheet = Image.open(result.contact_sheet)
    assert sheet.width >= 2 * (2 * 256)  # two pairs of faces per row
    assert sheet.height >= (result.pairs // 2) * 64
