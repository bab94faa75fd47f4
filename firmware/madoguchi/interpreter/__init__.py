"""The interpreter: front-end utterances through ASR and translation to what each side reads.

``policy`` decides languages (pure), ``translation`` runs phrasebook, glossary and MT,
and ``stage`` does one utterance end to end with its timings (the app's runner runs it on its
worker thread: app/stages.py).
"""
