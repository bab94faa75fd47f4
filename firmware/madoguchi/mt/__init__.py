"""Machine translation: CTranslate2 int8 models (Marian/OPUS-MT, M2M100, NLLB-200, MADLAD-400).

``router.MachineTranslation`` is what the pipeline calls: it picks a model per language pair
(a dedicated pair first, then a multilingual model, else two hops through English) and
translates sentence by sentence in one batch. ``engine`` loads one model folder (checked
before CTranslate2 sees it), ``families`` knows each family's tokenizer files and language
tokens, ``vmap`` builds per-target-language vocabulary maps that make large multilingual
vocabularies cheaper to decode. The phrasebook and the site glossary, tried before MT, live
in this package too.
"""
