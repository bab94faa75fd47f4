"""Errors of the admin fleet tools; each prints as one line naming what failed and where."""

from __future__ import annotations

from madoguchi.errors import MadoguchiError


class FleetConnectError(MadoguchiError, ConnectionError):
    """The broker could not be reached: nothing listening, unknown host, no answer."""

    code = "broker_unreachable"


class FleetTlsError(FleetConnectError):
    """The TLS handshake failed: untrusted or mismatched certificate, a plain port, a bad client cert."""

    code = "broker_tls"


class FleetRefusedError(FleetConnectError):
    """The broker answered but refused the connection (credentials, client id, not authorized)."""

    code = "broker_refused"


class FleetInputError(MadoguchiError, ValueError):
    """A fleet tool was given something it cannot use (empty [mqtt] host, a bad --since)."""

    code = "fleet_input"


class FleetExtraMissingError(MadoguchiError, ImportError):
    """A fleet tool needs a package of an optional extra that is not installed (``fleet report``: matplotlib)."""

    code = "missing_extra"
