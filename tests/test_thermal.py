"""thermal.py on a fake sysfs tree: temperature zones, the Pi's throttled word, and the ASR load policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from madoguchi import thermal
from madoguchi.thermal import LoadLevel, Throttled, cpu_temp_c, decode_throttled, load_level, throttled


def zone(root: Path, n: int, kind: str | None, temp: str) -> None:
    folder = root / "sys/class/thermal" / f"thermal_zone{n}"
    folder.mkdir(parents=True)
    (folder / "temp").write_text(temp + "\n")
    if kind is not None:
        (folder / "type").write_text(kind + "\n")


def throttled_file(root: Path, text: str) -> None:
    path = root / thermal.THROTTLED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cpu_zone_is_preferred(tmp_path: Path) -> None:
    zone(tmp_path, 0, "acpitz", "40000")
    zone(tmp_path, 1, "cpu-thermal", "71234")
    assert cpu_temp_c(tmp_path) == 71.2


def test_any_zone_that_reads_when_none_is_the_cpu(tmp_path: Path) -> None:
    zone(tmp_path, 0, "acpitz", "garbage")  # unreadable: ignored
    zone(tmp_path, 1, None, "45500")  # no type file
    assert cpu_temp_c(tmp_path) == 45.5


def test_no_thermal_zone_is_none(tmp_path: Path) -> None:
    assert cpu_temp_c(tmp_path) is None


@pytest.mark.parametrize("text", ["50005\n", "0x50005", "throttled=0x50005\n"])
def test_throttled_word_in_every_spelling(tmp_path: Path, text: str) -> None:
    throttled_file(tmp_path, text)
    flags = throttled(tmp_path)
    assert flags == Throttled(0x50005, under_voltage=True, throttled=True, under_voltage_occurred=True, throttled_occurred=True)
    assert flags.now and flags.occurred
    assert flags.active() == ["under-voltage", "throttled"] and flags.past() == ["under-voltage", "throttled"]


def test_throttled_absent_or_unreadable_is_none(tmp_path: Path) -> None:
    assert throttled(tmp_path) is None
    throttled_file(tmp_path, "not a number")
    assert throttled(tmp_path) is None


def test_every_bit_decodes() -> None:
    assert decode_throttled(0) == Throttled(0)
    flags = decode_throttled(0xF000F)
    assert all(getattr(flags, name) for name in ("under_voltage", "freq_capped", "throttled", "soft_temp_limit", "under_voltage_occurred",
                                                  "freq_capped_occurred", "throttled_occurred", "soft_temp_limit_occurred"))
    past_only = decode_throttled(0x80000)
    assert past_only.soft_temp_limit_occurred and not past_only.now and past_only.past() == ["soft temperature limit"]


@pytest.mark.parametrize(("temp", "level", "threads", "smaller"), [
    (None, "normal", 4, False),
    (45.0, "normal", 4, False),
    (74.9, "normal", 4, False),
    (75.0, "warm", 3, False),
    (80.0, "hot", 2, True),
    (84.9, "hot", 2, True),
    (85.0, "critical", 1, True),
    (95.0, "critical", 1, True),
])
def test_load_level_by_temperature(temp: float | None, level: str, threads: int, smaller: bool) -> None:
    got = load_level(temp, None, max_threads=4)
    assert (got.level, got.asr_threads, got.smaller_model) == (level, threads, smaller)


def test_firmware_flags_raise_the_level_but_history_does_not() -> None:
    assert load_level(50.0, decode_throttled(0x8), max_threads=4).level == "warm"  # soft temperature limit now
    for word in (0x1, 0x2, 0x4):  # under-voltage, frequency capped, throttled: now
        got = load_level(50.0, decode_throttled(word), max_threads=4)
        assert (got.level, got.asr_threads, got.smaller_model) == ("hot", 2, True)
        assert "now" in got.reason
    assert load_level(50.0, decode_throttled(0xF0000), max_threads=4).level == "normal"  # only "has occurred"


def test_hysteresis_keeps_a_level_until_well_below_it() -> None:
    hot = load_level(81.0, None, max_threads=4)
    assert load_level(78.0, None, max_threads=4, previous=hot).level == "hot"  # within 3 °C of 80
    assert load_level(76.0, None, max_threads=4, previous=hot).level == "warm"
    assert load_level(60.0, None, max_threads=4, previous=hot).level == "normal"
    assert load_level(86.0, None, max_threads=4, previous=hot).level == "critical"  # going up needs no margin
    assert load_level(78.0, None, max_threads=4).level == "warm"  # without a previous level, no memory


def test_threads_never_below_one() -> None:
    for temp in (50.0, 76.0, 81.0, 90.0):
        for most in (1, 2, 3):
            got = load_level(temp, None, max_threads=most)
            assert 1 <= got.asr_threads <= most
    assert load_level(76.0, None, max_threads=2).asr_threads == 1
    assert isinstance(load_level(None, None), LoadLevel)
