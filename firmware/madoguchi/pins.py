"""Cross-checks of the GPIO numbers in the config: no pin used twice, none taken by the SPI bus.

The config loader validates each key on its own (a BCM number from 0 to 27, or -1 when not
fitted); only here are the keys seen together. :func:`check_pins` returns problems in the
loader's ``(table, key, message)`` form, so a wrong wiring is a config error at start, naming the
file and key, instead of a ``GPIOPinInUse`` (or a dead panel) at run time.

What counts as used:
- the panels' DC and RST pins, and their SPI bus, while the panels are real ([display] driver
  is not ``dummy`` or ``none``, which drive no pins);
- every button and LED pin while [controls] enabled is true.
-1 means "not fitted" and is never a conflict.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loader calls these checks: no import of it at run time
    from madoguchi.config import Settings

log = logging.getLogger(__name__)

# The pins the kernel's SPI driver claims for each bus once the overlay is on (spi=on for SPI0,
# spi1-3cs for SPI1): all chip selects and MISO too, even though the panels only write.
SPI_PINS: dict[int, dict[int, str]] = {
    0: {7: "CE1", 8: "CE0", 9: "MISO", 10: "MOSI", 11: "SCLK"},
    1: {16: "CE2", 17: "CE1", 18: "CE0", 19: "MISO", 20: "MOSI", 21: "SCLK"},
}
PANEL_PIN_KEYS = ("staff_dc_pin", "staff_rst_pin", "resident_dc_pin", "resident_rst_pin")
CONTROL_PIN_KEYS = (
    "language_pin", "swap_pin", "mode_pin", "mute_pin", "operator_pin",
    "staff_led_pin", "resident_led_pin", "status_led_pin",
)
# Pins hw/pinmap.toml keeps clear (HAT EEPROM, I2C1, UART console, a 2-mic HAT's I2S, GPIO 26):
# never suggested while another free pin exists.
_KEEP_CLEAR = frozenset({0, 1, 2, 3, 14, 15, 18, 19, 20, 21, 26})
_NO_PANEL_DRIVERS = ("dummy", "none")


def _panels_on_spi(settings: Settings) -> bool:
    return settings.display.driver not in _NO_PANEL_DRIVERS


def _used(settings: Settings) -> list[tuple[str, str, int]]:
    """(table, key, pin) of every fitted pin in use, display first, in key order."""
    used = []
    if _panels_on_spi(settings):
        used += [("display", key, getattr(settings.display, key)) for key in PANEL_PIN_KEYS]
    if settings.controls.enabled:
        used += [("controls", key, getattr(settings.controls, key)) for key in CONTROL_PIN_KEYS]
    return [(table, key, pin) for table, key, pin in used if pin >= 0]


def _suggestion(taken: set[int], table: str) -> str:
    """'e.g. …': GPIOs nothing uses, preferring those the pin map does not keep clear."""
    free = [pin for pin in range(28) if pin not in taken]
    preferred = [pin for pin in free if pin not in _KEEP_CLEAR]
    if preferred:
        text = "e.g. " + " or ".join(str(pin) for pin in preferred[:3])
    elif free:
        text = "e.g. " + " or ".join(str(pin) for pin in free[:3]) + " (pins hw/pinmap.toml keeps clear for I2C, UART or a HAT: check yours)"
    else:
        text = "none is left"
    return text + (", or -1 when not fitted" if table == "controls" else "")


def check_pins(settings: Settings) -> list[tuple[str, str, str]]:
    """Problems as (table, key, message): a GPIO used twice, or one the panels' SPI bus uses."""
    used = _used(settings)
    bus: dict[int, str] = {}
    port = settings.display.spi_port
    if _panels_on_spi(settings):
        if port in SPI_PINS:
            bus = SPI_PINS[port]
        else:
            log.warning("[display] spi_port = %d: the pins of SPI%d are not checked (only SPI0's and SPI1's are); keep buttons, LEDs and DC/RST pins off them", port, port)
    span = f"{min(bus)}-{max(bus)}" if bus else ""
    problems: list[tuple[str, str, str]] = []
    first_user: dict[int, tuple[str, str]] = {}
    for index, (table, key, pin) in enumerate(used):
        # Free for this key: whatever no *other* key and no bus pin holds.
        taken = {p for i, (_, _, p) in enumerate(used) if i != index} | set(bus)
        if pin in bus:
            problems.append((table, key, f"GPIO {pin} is SPI{port} {bus[pin]}, used by the panels ([display] spi_port = {port}); "
                             f"allowed: a GPIO off SPI{port} ({span}) that nothing else uses, {_suggestion(taken, table)}"))
        elif pin in first_user:
            other_table, other_key = first_user[pin]
            problems.append((table, key, f"GPIO {pin} is also [{other_table}] {other_key}; allowed: a GPIO no other device uses, {_suggestion(taken, table)}"))
        else:
            first_user[pin] = (table, key)
    return problems
