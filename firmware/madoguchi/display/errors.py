"""Errors of the display code: fonts that are not installed, text shaping that is not available.

They extend the firmware's ``MadoguchiError`` (stable ``code`` for logs and status) and the
built-in that fits, so ``except FileNotFoundError`` still catches a missing font.
"""

from __future__ import annotations

from pathlib import Path

from madoguchi.errors import MadoguchiError


class DisplayError(MadoguchiError, RuntimeError):
    """Base of every error the display code raises on purpose."""

    code = "display_error"


class FontMissingError(DisplayError, FileNotFoundError):
    """A font file the language needs is not installed; names the Debian package that has it."""

    code = "font_missing"

    def __init__(self, path: Path, package: str, lang: str | None = None) -> None:
        self.path = Path(path)
        self.package = package
        self.lang = lang
        needed = f" (needed for {lang})" if lang else ""
        super().__init__(f"font {self.path} not found{needed}; install the Debian package {package}: apt-get install {package}")


class ShapingUnavailableError(DisplayError):
    """Pillow was built without raqm: complex scripts would be drawn as unshaped, wrong glyphs."""

    code = "shaping_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Pillow has no raqm layout engine (PIL.features.check('raqm') is False): Thai, Burmese and "
            "Devanagari cannot be shaped without it; install Pillow's PyPI wheel (it bundles raqm, "
            "HarfBuzz and FriBiDi) or Debian libraqm0"
        )


class PanelUnavailableError(DisplayError):
    """A panel's SPI device or its DC/RST pins could not be opened (SPI off, unwired, no permission)."""

    code = "display_unavailable"

    def __init__(self, side: str, where: str, cause: BaseException) -> None:
        self.side = side
        super().__init__(
            f"the {side} panel at {where} cannot be opened ({type(cause).__name__}: {cause}); check that SPI is on "
            "(dtparam=spi=on in config.txt), the panel is wired as in hw/wiring.md, and the service user is in the "
            "spi and gpio groups; or set [display] driver = \"none\""
        )
