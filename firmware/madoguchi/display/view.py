"""What one face shows, as plain data: the state machine (state.py) makes it, render.py draws it.

A view holds no pixels and no fonts, so what a face should show is tested without drawing, and
drawing is tested (golden PNGs) without running the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from madoguchi.events import Side

Broker = Literal["up", "down", "off"]  # off: no [mqtt] host configured
Screen = Literal["text", "idle", "list", "off"]


@dataclass(frozen=True)
class StatusLine:
    """The top line of a face: who speaks, the two languages, mic level, mute, broker link, error."""

    speaking: Side | None  # the side whose utterance is open now
    own_lang: str  # this face's language
    other_lang: str | None  # the other side's language; None while the resident's is not known
    mic_level: float  # 0.0 (background) … 1.0 (loud speech)
    muted: bool  # privacy mute: no speech is processed
    broker: Broker
    error: str | None  # the last error's code, e.g. mic_lost; else a hint's (check_sides)
    mode: str  # interpret | caption | easy_japanese
    operator_call: bool = False  # a remote interpreter has been called
    private: bool = False  # privacy mode: "muted" is the closed session (shown as PRIV, not MUTE)


@dataclass(frozen=True)
class FaceView:
    """One face at one moment.

    ``screen``:
      - ``text``: ``main`` is the other side's words for this face (``main_lang`` picks fonts and
        line breaking); ``partial`` while its speaker is still talking (the newest words matter:
        the renderer shows the tail); else the renderer scrolls long text by ``shown_for_s``.
        ``echo`` is this face's own speaker's last recognised words, small, in ``echo_lang``.
      - ``idle``: ``main`` is the greeting in ``main_lang`` ("Please speak in your language").
      - ``list``: ``items`` (names of languages, each in its own script, with ``item_langs``) and
        the ``selected`` index: the resident language list opened by holding the language button.
      - ``off``: the panel sleeps; nothing is drawn.
    ``dim``: drawn at half brightness (idle for a while).
    """

    screen: Screen
    status: StatusLine
    main: str = ""
    main_lang: str = "en"
    partial: bool = False
    shown_for_s: float = 0.0
    echo: str = ""
    echo_lang: str = "en"
    items: tuple[str, ...] = ()
    item_langs: tuple[str, ...] = ()
    selected: int = 0
    dim: bool = False
