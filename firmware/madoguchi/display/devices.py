"""The two panels behind one small interface: luma.oled drivers on SPI, or luma's dummy device.

``open_panels`` builds a ``Panel`` per face from ``[display]``. A panel takes the renderer's
greyscale frame and sends it only when it changed (an SPI frame of an SSD1322 is 8 KB); it
switches the panel off when the face sleeps, and dims it. Sending is blocking: the service calls
``show`` from a worker thread, never from the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PIL import Image

from madoguchi.config import DISPLAY_DRIVERS, DisplaySettings
from madoguchi.display.errors import PanelUnavailableError
from madoguchi.events import Side

log = logging.getLogger(__name__)

MONO_DRIVERS = ("ssd1306", "sh1106")  # 1-bit panels: the renderer draws without antialiasing
DIM_FACTOR = 0.5


def panel_size(settings: DisplaySettings) -> tuple[int, int]:
    native = DISPLAY_DRIVERS[settings.driver]
    return (settings.width or native[0], settings.height or native[1])


@dataclass(frozen=True)
class PanelWiring:
    side: Side
    spi_device: int
    dc_pin: int
    rst_pin: int
    rotate: int


def wiring(settings: DisplaySettings) -> dict[Side, PanelWiring]:
    return {
        "staff": PanelWiring("staff", settings.staff_spi_device, settings.staff_dc_pin, settings.staff_rst_pin, settings.staff_rotate),
        "resident": PanelWiring("resident", settings.resident_spi_device, settings.resident_dc_pin, settings.resident_rst_pin, settings.resident_rotate),
    }


class Panel:
    """One face's panel: show a frame, sleep, wake, dim. ``device`` is any luma device."""

    def __init__(self, side: Side, device, brightness: float, mono: bool) -> None:
        self.side = side
        self.device = device
        self.mono = mono
        self.size: tuple[int, int] = device.size
        self._brightness = brightness
        self._level: int | None = None
        self._last: bytes | None = None
        self._asleep = False
        self.frames_sent = 0

    def _contrast(self, dim: bool) -> None:
        # Grey panels are dimmed in the pixels (render.py); 1-bit ones can only lower the contrast.
        level = round(255 * self._brightness * (DIM_FACTOR if dim and self.mono else 1.0))
        if level != self._level:
            self.device.contrast(level)
            self._level = level

    def show(self, frame: Image.Image, dim: bool = False) -> bool:
        """Send ``frame`` (mode "L", the panel's size) unless the panel already shows it; True if sent."""
        if self._asleep:
            self.device.show()
            self._asleep = False
        self._contrast(dim)
        data = frame.tobytes()
        if data == self._last:
            return False
        self.device.display(frame.convert(self.device.mode))
        self._last = data
        self.frames_sent += 1
        return True

    def sleep(self) -> None:
        """Switch the panel off (OLED pixels age while lit); the next ``show`` wakes it."""
        if not self._asleep:
            self.device.hide()
            self._asleep = True
            self._last = None

    @property
    def asleep(self) -> bool:
        return self._asleep

    def close(self) -> None:
        """Blank and release the panel now, not at interpreter exit (luma's atexit hook)."""
        try:
            self.device.cleanup()
        finally:
            self.device.persist = True  # luma's atexit hook must not touch a released interface


def _dummy(settings: DisplaySettings, rotate: int) -> object:
    from luma.core.device import dummy

    width, height = panel_size(settings)
    return dummy(width=width, height=height, rotate=rotate, mode="1" if settings.driver in MONO_DRIVERS else "RGB")


def _spi_device(settings: DisplaySettings, wire: PanelWiring) -> object:
    import luma.oled.device
    from luma.core.interface.serial import spi

    width, height = panel_size(settings)
    where = f"/dev/spidev{settings.spi_port}.{wire.spi_device} (DC GPIO{wire.dc_pin}, RST GPIO{wire.rst_pin})"
    try:
        serial = spi(port=settings.spi_port, device=wire.spi_device, gpio_DC=wire.dc_pin, gpio_RST=None if wire.rst_pin < 0 else wire.rst_pin,
                     bus_speed_hz=settings.spi_speed_hz)
        return getattr(luma.oled.device, settings.driver)(serial, width=width, height=height, rotate=wire.rotate)
    except Exception as err:  # luma raises DeviceNotFoundError, DevicePermissionError, ImportError (no RPi.GPIO) …
        raise PanelUnavailableError(wire.side, where, err) from err


def open_panels(settings: DisplaySettings, *, simulated: bool = False) -> dict[Side, Panel]:
    """One panel per face; driver "none" gives none. A panel that cannot open raises PanelUnavailableError.

    ``simulated``: luma's dummy devices of the configured panel's size and colour depth, for
    ``replay --frames`` and tests; so is driver "dummy".
    """
    if settings.driver == "none" and not simulated:
        return {}
    panels: dict[Side, Panel] = {}
    try:
        for side, wire in wiring(settings).items():
            device = _dummy(settings, wire.rotate) if simulated or settings.driver in ("dummy", "none") else _spi_device(settings, wire)
            panels[side] = Panel(side, device, settings.brightness, settings.driver in MONO_DRIVERS)
            log.info("%s panel: %s %dx%d", side, settings.driver, *panels[side].size)
    except BaseException:
        for panel in panels.values():
            panel.close()
        raise
    return panels
