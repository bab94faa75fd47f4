"""The records the box prints, one per utterance: ``--json`` lines and the text form.

The printed record is what the counter was shown (the side corrected by language ID); the
fleet's usage is built from the same ``Interpretation`` (telemetry/service.py).
"""

from __future__ import annotations

from madoguchi.config import Settings
from madoguchi.events import Caption, Interpretation, Utterance
from madoguchi.frontend.placement import Placement


def utterance_record(utterance: Utterance) -> dict[str, object]:
    record = utterance.summary()
    record["elevation_deg"] = utterance.elevation_deg
    # Audio time from the end of speech to the endpointer's decision (the hangover's cost).
    record["endpoint_ms"] = round((utterance.decided_at_s - utterance.end_s) * 1000)
    return record


def format_utterance(record: dict[str, object]) -> str:
    return f"[{record['start_s']:7.2f} - {record['end_s']:7.2f}] {record['side']:<8} azimuth {record['azimuth_deg']:5.1f} deg  confidence {record['side_confidence']:.2f}"


def interpretation_record(result: Interpretation) -> dict[str, object]:
    """The brief's fields (start_s … translation, per-stage timings in ms) plus how it was decided."""
    utterance, translation = result.utterance, result.translation
    record = utterance.summary()
    record["side"] = result.side
    record.update(
        lang=result.lang,
        lang_probability=None if result.lang_probability is None else round(result.lang_probability, 3),
        text=result.text,
        target_lang=translation.target_lang if translation else None,
        translation=translation.text if translation else None,
        translation_method=translation.method if translation else None,
        needs_review=translation.needs_review if translation else False,
        rejected=result.rejected,
        mode=result.mode,
    )
    record.update(result.timings_ms)
    return record


def caption_record(caption: Caption) -> dict[str, object]:
    return {"partial": True, "start_s": caption.start_s, "at_s": caption.at_s, "side": caption.side, "lang": caption.lang, "text": caption.text}


def format_interpretation(record: dict[str, object]) -> str:
    head = f"[{record['start_s']:6.2f}-{record['end_s']:6.2f}] {record['side']:<8} {record['lang']:<3}"
    if record["rejected"]:
        return f"{head} (not words: {record['rejected']})"
    lines = [f"{head} {record['text']}"]
    if record["translation"] is not None:
        notes = [str(record["translation_method"])] + (["needs native review"] if record["needs_review"] else [])
        lines.append(f"{'':>25}-> {record['target_lang']:<3}{record['translation']}  ({', '.join(notes)})")
    elif record["target_lang"]:
        lines.append(f"{'':>25}-> {record['target_lang']:<3}(no phrase matched and no translation model for this pair: see `madoguchi models list`)")
    return "\n".join(lines)


def placement_hint(settings: Settings, placement: Placement) -> str:
    """The message for sides that do not match the room: what was heard where, and the command that fixes it."""
    fleet = str(settings.paths.fleet_config)
    local = [name for name in settings.sources if name != fleet]
    config = local[-1] if local else "/etc/madoguchi/madoguchi.toml"
    return (f"madoguchi: speech is being ignored: {placement.describe(settings.sides)}\n"
            f"  the [sides] do not match where people speak; have each side talk in turn at the box while this learns their directions:\n"
            f"  madoguchi calibrate --config {config} --live 8 --write {config}")
