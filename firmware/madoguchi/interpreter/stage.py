"""One utterance end to end: ASR in the language the policy asks for, then translation, timed.

Blocking (whisper.cpp, CTranslate2): the pipeline runs it on one worker thread, so the models
are never used from two threads at once. The resident's language is remembered for the session
(audio time, no clock), which makes the next utterance's identification easier and tells staff
speech which language to go to.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from madoguchi.config import LanguageSettings, Settings
from madoguchi.counter import CounterState
from madoguchi.events import Caption, Interpretation, SpeechSoFar, Translation, Utterance
from madoguchi.interpreter import policy

if TYPE_CHECKING:
    from madoguchi.asr.base import SpeechRecognizer, Transcription
    from madoguchi.easyja import EasyJapanese
    from madoguchi.interpreter.translation import TranslationStage

log = logging.getLogger(__name__)

SESSION_IDLE_S = 120.0  # as telemetry's sessions: a longer pause means the next resident
RETRY_LANGUAGES = 2  # runner-up languages tried when the identified one gives no confident words
RETRY_MIN_SHARE = 0.5  # of the top language's score, for a runner-up to be worth a try


class Interpreter:
    def __init__(self, settings: Settings, recognizer: SpeechRecognizer, translation: TranslationStage, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.recognizer = recognizer
        self.translation = translation
        self._clock = clock
        self.session_lang: str | None = None  # the current resident's language, once heard
        self._last_end_s: float | None = None
        # The buttons' state (mode, a chosen resident language). The event loop replaces it
        # whole; each utterance reads it once, so one utterance never sees two states.
        self.counter = CounterState(mode=settings.display.mode)
        self._easy: EasyJapanese | None = None

    def close(self) -> None:
        self.recognizer.close()
        self.translation.close()

    def _session_lang_at(self, start_s: float) -> str | None:
        """The resident's language for speech starting at ``start_s`` (forgotten after a long pause)."""
        if self._last_end_s is not None and start_s - self._last_end_s > SESSION_IDLE_S:
            return None
        return self.session_lang

    def commit(self, result: Interpretation) -> None:
        """The session learns from a final result: when speech last ended, and the resident's language."""
        self.session_lang = policy.resident_language_heard(result, self.settings.languages.staff) or self._session_lang_at(result.utterance.start_s)
        self._last_end_s = result.utterance.end_s

    def _languages(self, counter: CounterState) -> LanguageSettings:
        """The site's languages, narrowed to the resident language chosen with the button."""
        languages = self.settings.languages
        if counter.resident_lang is None:
            return languages
        return dataclasses.replace(languages, residents=(counter.resident_lang,), resident_weights=())

    def interpret(self, utterance: Utterance, decided_wall: float | None = None, *, commit: bool = True) -> Interpretation:
        """``decided_wall``: the clock when the front end closed it (default: now), for latency_ms.

        ``commit=False`` leaves the session as it was (early work on a paused utterance, which
        the talker may go on with): ``commit`` it once it is final."""
        decided_wall = self._clock() if decided_wall is None else decided_wall
        counter = self.counter
        session_lang = self._session_lang_at(utterance.start_s)
        languages = self._languages(counter)
        request = policy.language_request(utterance, languages, session_lang, counter.mode, counter.resident_lang)
        t0 = self._clock()
        heard = self.recognizer.transcribe(utterance.audio, language=request.language, candidates=request.candidates, priors=request.priors)
        if heard.rejected == "low_confidence" and heard.lang_scores:
            heard = self._second_opinion(utterance, heard, budget_s=self._clock() - t0)
        heard = dataclasses.replace(heard, text=self.translation.as_the_site_writes(heard.text, heard.lang))
        t1 = self._clock()
        side = policy.speaker_side(utterance, heard.lang, languages, counter.mode)
        translation = None
        if heard.rejected is None and heard.text:
            translation = self._translate(heard.text, heard.lang, side, counter, languages, session_lang)
        t2 = self._clock()
        vad_ms = (utterance.decided_at_s - utterance.end_s) * 1000.0  # the endpointer's hangover, in audio time
        timings = {
            "vad_ms": round(vad_ms, 1),
            "asr_ms": round((t1 - t0) * 1000.0, 1),
            "mt_ms": round((t2 - t1) * 1000.0, 1),
            "latency_ms": round(vad_ms + (t2 - decided_wall) * 1000.0, 1),
        }
        if heard.rejected:
            log.info("%.2f-%.2f s %s: not transcribed (%s)", utterance.start_s, utterance.end_s, side, heard.rejected)
        result = Interpretation(utterance, side, heard.lang, heard.text, translation, heard.rejected, heard.lang_probability, timings, counter.mode)
        if commit:
            self.commit(result)
        return result

    def _translate(self, text: str, lang: str, side: str, counter: CounterState, languages: LanguageSettings, session_lang: str | None) -> Translation:
        """Interpret mode translates; caption mode shows the words as said; easy Japanese rewrites the
        clerk's words and translates a resident who answers in their own language."""
        if counter.mode == "interpret":
            return self.translation.translate(text, lang, policy.target_language(side, languages, session_lang))
        if counter.mode == "easy_japanese":
            if side == "staff" and lang == "ja":
                return Translation(self.easy_japanese().text(text), lang, lang, "easy_japanese")
            if side == "resident" and lang != languages.staff:  # answered in their own language: the clerk reads it
                return self.translation.translate(text, lang, languages.staff)
        return Translation(text, lang, lang, "same_language")

    def easy_japanese(self) -> EasyJapanese:
        """The rewriter, loaded on first use (the morphological analyser's dictionary is large)."""
        if self._easy is None:
            from madoguchi.easyja import EasyJapanese

            self._easy = EasyJapanese(self.settings.easy_japanese)
        return self._easy

    def _second_opinion(self, utterance: Utterance, heard: Transcription, budget_s: float) -> Transcription:
        """Words the identified language cannot make sense of, tried in the runner-up languages.

        Half a second of "Hello." scores zh 0.37, en 0.27 with Whisper base; decoded as Chinese it
        is noise (low confidence), as English it is "Hello?". Only close runners-up get a try, and
        only while the retries have spent less than ``budget_s`` (what the first pass took), so
        noise costs at most about twice a plain pass and is still rejected.
        """
        ranked = sorted(heard.lang_scores.items(), key=lambda item: -item[1])
        top = ranked[0][1]
        started = self._clock()
        for lang, score in ranked[1 : 1 + RETRY_LANGUAGES]:
            if score < RETRY_MIN_SHARE * top or self._clock() - started >= budget_s:
                break
            retry = self.recognizer.transcribe(utterance.audio, language=lang)
            if retry.rejected is None:
                log.debug("%.2f s: %s made no sense, %s did (%.2f of the top score)", utterance.start_s, heard.lang, lang, score / top)
                return dataclasses.replace(retry, lang_probability=score, lang_scores=heard.lang_scores)
        return heard

    def caption(self, snapshot: SpeechSoFar) -> Caption | None:
        """Live text for an open utterance; None when it is not (yet) words."""
        counter = self.counter
        languages = self._languages(counter)
        if snapshot.side == "staff" or counter.mode != "interpret":
            language: str | None = counter.resident_lang if snapshot.side == "resident" and counter.resident_lang else languages.staff
        elif counter.resident_lang is not None:
            language = counter.resident_lang
        else:
            language = self.session_lang  # identification waits for the whole utterance
        if language is None:
            priors = policy.resident_priors(languages, None)
            heard: Transcription = self.recognizer.transcribe(snapshot.audio, candidates=tuple(priors), priors=priors, partial=True)
        else:
            heard = self.recognizer.transcribe(snapshot.audio, language=language, partial=True)
        if heard.rejected or not heard.text:
            return None
        return Caption(snapshot.start_s, snapshot.at_s, snapshot.side, heard.lang, self.translation.as_the_site_writes(heard.text, heard.lang))
