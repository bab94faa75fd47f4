"""The interpreter: front-end utterances through ASR and translation to what each side reads.

``policy`` decides languages (pure), ``translation`` runs phrasebook, glossary and MT,
``stage`` does one utterance end to end with its timings, and ``pipeline`` runs the stages as
asyncio tasks for ``madoguchi run`` and ``madoguchi replay``.
"""
