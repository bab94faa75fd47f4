"""The doctor's one result type and the guard that turns any exception into a fail line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

STATUSES = ("ok", "warn", "fail", "skip")
SERVICE_STOP = "sudo systemctl stop madoguchi"  # the service holds the mic array, panels and pins while it runs
AS_ROOT = "run the doctor as root or as the service user: sudo madoguchi doctor"
BUG = "the check itself failed: run `madoguchi -vv doctor` and report the output"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table: ``status`` is ok, warn, fail or skip; every warn and fail has a ``fix``."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def skip(name: str, reason: str) -> Check:
    return Check(name, "skip", reason)


Result = Check | list[Check]


def split_fix(message: str) -> tuple[str, str]:
    """The firmware's messages often end in "; fix: …": (what, fix), fix "" when there is none."""
    what, sep, fix = message.partition("; fix: ")
    return (what, fix) if sep else (message, "")


def fix_for(err: BaseException, default: str) -> tuple[str, str]:
    """(what, fix) for an exception: its own "; fix: …" if it says one, root for a permission error, else ``default``."""
    if isinstance(err, PermissionError):
        return f"{type(err).__name__}: {err}", AS_ROOT
    what, fix = split_fix(str(err))
    return what, fix or default


def guarded(name: str, check: Callable[..., Result], *args: object, **kwargs: object) -> list[Check]:
    """Run one check; an exception becomes a fail line with its text, never a traceback."""
    try:
        result = check(*args, **kwargs)
    except Exception as err:
        log.debug("check %s raised", name, exc_info=True)
        what, fix = fix_for(err, BUG)
        text = what if what.startswith(type(err).__name__) else f"{type(err).__name__}: {what}"
        return [fail(name, text.replace("\n", "; "), fix)]
    return result if isinstance(result, list) else [result]
