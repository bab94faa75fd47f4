"""Easy-Japanese errors: one class, with a stable ``code``, for data files that cannot be used."""

from __future__ import annotations

from madoguchi.errors import MadoguchiError


class EasyJapaneseError(MadoguchiError, ValueError):
    """A terms or rules file is unusable; the message names the file, the entry and what is allowed."""

    code = "easyja_data_invalid"
