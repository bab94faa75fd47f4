"""The panels behind luma: dummy devices for tests and replays, and real drivers' errors."""

from __future__ import annotations

import pytest
from PIL import Image

from madoguchi.config import DisplaySettings
from madoguchi.display.devices import open_panels, panel_size
from madoguchi.display.errors import PanelUnavailableError


def frame(size: tuple[int, int], shade: int) -> Image.Image:
    return Image.new("L", size, shade)


@pytest.mark.parametrize(("driver", "size", "mode"), [("ssd1322", (256, 64), "RGB"), ("ssd1306", (128, 64), "1"), ("sh1106", (128, 64), "1"), ("ssd1351", (128, 128), "RGB")])
def test_simulated_panels_have_the_configured_drivers_size_and_depth(driver: str, size: tuple[int, int], mode: str) -> None:
    panels = open_panels(DisplaySettings(driver=driver), simulated=True)
    assert set(panels) == {"staff", "resident"}
    for panel in panels.values():
        assert panel.size == size and panel.device.mode == mode and panel.mono == (mode == "1")
        panel.close()


def test_a_frame_is_sent_once_and_a_sleeping_panel_wakes_for_the_next() -> None:
    panel = open_panels(DisplaySettings(driver="dummy"))["staff"]
    image = frame(panel.size, 200)
    assert panel.show(image) and not panel.show(image)  # unchanged: no SPI traffic
    assert panel.device.image.getpixel((0, 0)) == (200, 200, 200)
    panel.sleep()
    assert panel.asleep
    assert panel.show(image) and not panel.asleep  # woken, and the frame resent
    assert panel.frames_sent == 2


def test_rotation_and_size_come_from_config() -> None:
    settings = DisplaySettings(driver="dummy", width=128, height=32, resident_rotate=2)
    assert panel_size(settings) == (128, 32)
    panels = open_panels(settings)
    top_left = Image.new("L", (128, 32), 0)
    top_left.putpixel((0, 0), 255)
    panels["resident"].show(top_left)
    panels["staff"].show(top_left)
    assert panels["staff"].device.image.getpixel((0, 0)) == (255, 255, 255)
    assert panels["resident"].device.image.getpixel((127, 31)) == (255, 255, 255)  # mounted upside down


def test_brightness_and_dimming_set_the_contrast_of_a_mono_panel() -> None:
    panel = open_panels(DisplaySettings(driver="ssd1306", brightness=0.8), simulated=True)["staff"]
    sent: list[int] = []
    panel.device.contrast = sent.append
    panel.show(frame(panel.size, 1))
    panel.show(frame(panel.size, 2), dim=True)
    panel.show(frame(panel.size, 3), dim=True)
    assert sent == [204, 102]  # set only when it changes


def test_driver_none_gives_no_panels() -> None:
    assert open_panels(DisplaySettings(driver="none")) == {}


def test_a_panel_that_cannot_open_names_the_spi_device_and_the_fix() -> None:
    """On this machine there is no /dev/spidev0.0: the real driver's failure becomes one clear error."""
    with pytest.raises(PanelUnavailableError) as caught:
        open_panels(DisplaySettings(driver="ssd1322"))
    message = str(caught.value)
    assert caught.value.code == "display_unavailable"
    assert "/dev/spidev0.0" in message and "staff" in message and "dtparam=spi=on" in message


def test_closing_blanks_the_panel_now_and_disarms_lumas_exit_hook() -> None:
    panel = open_panels(DisplaySettings(driver="dummy"))["resident"]
    panel.show(frame(panel.size, 255))
    panel.close()
    assert panel.device.persist


@pytest.mark.parametrize("driver", ["ssd1322", "ssd1306", "sh1106", "ssd1351"])
def test_the_real_drivers_take_our_frames(driver: str) -> None:
    """luma.oled's own driver classes on luma's no-op serial interface: frame conversion, contrast, sleep."""
    import luma.oled.device
    from luma.core.interface.serial import noop

    from madoguchi.config import DISPLAY_DRIVERS
    from madoguchi.display.devices import MONO_DRIVERS, Panel

    width, height = DISPLAY_DRIVERS[driver]
    device = getattr(luma.oled.device, driver)(noop(), width=width, height=height)
    panel = Panel("staff", device, brightness=0.5, mono=driver in MONO_DRIVERS)
    try:
        assert panel.size == (width, height)
        assert panel.show(frame(panel.size, 180), dim=True)
        panel.sleep()
        assert panel.show(frame(panel.size, 90))
    finally:
        panel.close()
