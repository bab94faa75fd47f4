"""The faces' hardware: SPI device nodes, the GPIO chip, both panels through luma, fonts and text shaping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from madoguchi.config import Settings
from madoguchi.doctor.base import SERVICE_STOP, Check, fail, ok, skip, warn

NO_PANEL_DRIVERS = ("dummy", "none")
SPI_FIX = "turn SPI on: add dtparam=spi=on to /boot/firmware/config.txt (or `sudo raspi-config nonint do_spi 0`) and reboot"


def spi_check(settings: Settings, root: Path) -> Check:
    display = settings.display
    if display.driver in NO_PANEL_DRIVERS:
        return skip("spi devices", f'[display] driver = "{display.driver}": no panels on SPI')
    nodes = [root / "dev" / f"spidev{display.spi_port}.{d}" for d in (display.staff_spi_device, display.resident_spi_device)]
    missing = [str(n) for n in nodes if not n.exists()]
    if missing:
        return fail("spi devices", f"{', '.join(missing)} missing", SPI_FIX + (f" (SPI{display.spi_port} needs its own overlay, e.g. dtoverlay=spi1-2cs)" if display.spi_port else ""))
    return ok("spi devices", ", ".join(str(n) for n in nodes))


def gpio_check(settings: Settings, root: Path) -> Check:
    if settings.display.driver in NO_PANEL_DRIVERS and not settings.controls.enabled:
        return skip("gpio chip", "no panels and [controls] enabled = false: no pins used")
    chips = sorted(p.name for p in (root / "dev").glob("gpiochip*"))
    if not chips:
        return fail("gpio chip", f"no {root / 'dev'}/gpiochip* (not a Raspberry Pi, or the GPIO driver is not loaded)",
                    "run the doctor on the box itself; on a Pi check `gpiodetect` lists the chips and the user is in the gpio group")
    return ok("gpio chip", ", ".join(chips))


def open_and_close_panels(settings: Settings) -> dict[str, str]:
    """Open both panels with luma (as the service does) and release them; {side: "driver WxH"}."""
    from madoguchi.display.devices import open_panels

    panels = open_panels(settings.display)
    try:
        return {side: f"{settings.display.driver} {p.size[0]}x{p.size[1]}" for side, p in panels.items()}
    finally:
        for panel in panels.values():
            panel.close()


def panels_check(settings: Settings, opener: Callable[[Settings], dict[str, str]], spi: Check) -> Check:
    driver = settings.display.driver
    if driver in NO_PANEL_DRIVERS:
        return skip("panels", f'[display] driver = "{driver}": no panels to open')
    if spi.status == "fail":
        return fail("panels", f"{driver} panels cannot open without their SPI devices (line above)", SPI_FIX)
    try:
        opened = opener(settings)
    except Exception as err:  # noqa: BLE001 - PanelUnavailableError and whatever luma raises
        text = str(err)
        what, _, hint = text.partition("; check ")
        fix = ("check " + hint) if hint else "check the wiring (hw/wiring.md) and the spi and gpio groups"
        if "busy" in text.lower() or "in use" in text.lower():
            fix = f"the service holds the panels while it runs: `{SERVICE_STOP}`, run the doctor, then start it again"
        return fail("panels", what, fix)
    return ok("panels", ", ".join(f"{side}: {what}" for side, what in opened.items()))


def font_checks(settings: Settings, font_root: Path | None = None, has_raqm: Callable[[], bool] | None = None) -> list[Check]:
    """Every font the site's languages draw with, and Pillow's raqm (complex scripts)."""
    from PIL import features

    from madoguchi.display.fonts import FONT_ROOT, LATIN, chain_for

    root = Path(font_root or FONT_ROOT)
    raqm = (has_raqm or (lambda: bool(features.check("raqm"))))()
    shaping = ok("text shaping", "Pillow has raqm (HarfBuzz, FriBiDi)") if raqm else fail(
        "text shaping", "Pillow has no raqm layout engine: Thai, Burmese and Devanagari would be drawn unshaped",
        "install Pillow's PyPI wheel (it bundles raqm): pip install --force-reinstall 'pillow<14', or apt-get install libraqm0")
    if settings.display.driver == "none":
        return [skip("fonts", '[display] driver = "none": nothing is drawn'), shaping]
    langs = (settings.languages.staff, *settings.languages.residents)
    own = {chain_for(lang)[0] for lang in langs} | {LATIN}
    fallback = {f for lang in langs for f in chain_for(lang)} - own
    missing = sorted({f for f in own if not (root / f.file).is_file()}, key=lambda f: f.name)
    absent = sorted({f for f in fallback if not (root / f.file).is_file()}, key=lambda f: f.name)
    if missing:
        packages = " ".join(sorted({f.package for f in missing}))
        fonts = fail("fonts", f"missing: {', '.join(f'{f.name} ({root / f.file})' for f in missing)}", f"sudo apt-get install {packages}")
    elif absent:
        packages = " ".join(sorted({f.package for f in absent}))
        fonts = warn("fonts", f"every language's own font found; fallbacks missing (mixed-script text may show gaps): {', '.join(f.name for f in absent)}",
                     f"sudo apt-get install {packages}")
    else:
        fonts = ok("fonts", f"{len(own | fallback)} fonts for {', '.join(langs)} under {root}")
    return [fonts, shaping]
