"""Errors Spider answers with, and the one place that decides what counts as "not found".

CB-Spider answers almost every failure with HTTP 500 and ``{"message": text}``; the texts are part
of the wire contract (clients grep for ``does not exist``), so they are built here and nowhere else.
"""

from __future__ import annotations

import re


class SpiderError(Exception):
    """A failure with the message the client sees and the HTTP status it gets (500 by default)."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class DriverError(SpiderError):
    """A cloud driver call failed; the message is the driver's (secrets already removed).

    ``http_status`` (0 when unknown), ``error_code`` (the CSP's code, e.g. ``RequestLimitExceeded``)
    and ``retry_after`` (seconds the CSP asked to wait, or None) let the request-limit policy
    (``spider_core.limits``) recognise throttling without parsing texts."""

    def __init__(self, message: str, status: int | None = None, *, http_status: int = 0, error_code: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.http_status = http_status
        self.error_code = error_code
        self.retry_after = retry_after


class DriverNotFound(DriverError):
    """The cloud has no such resource. Lists turn this into a stub, deletes into success."""


class NotSupported(DriverError):
    """The driver does not implement this handler or operation."""


# CB-Spider decides "not found" by searching the driver's message for these words, case- and
# space-insensitively (contract 7.2). Third-party drivers that only raise DriverError keep working.
_NOT_FOUND_WORDS = ("notexist", "notfound", "failedtofind", "failedtogetthevm", "noresult", "isundefined")
_SPACES = re.compile(r"\s+")


def is_not_found(error: BaseException) -> bool:
    if isinstance(error, DriverNotFound):
        return True
    text = _SPACES.sub("", str(error)).lower()
    return any(word in text for word in _NOT_FOUND_WORDS)


# ---- canonical texts (contract 2.4) -------------------------------------------------------------

def connection_name_empty() -> SpiderError:
    return SpiderError("ConnectionName is empty!")


def empty_input(what: str) -> SpiderError:
    """``nameID is empty!``, ``vpcName is empty!`` ..."""
    return SpiderError(f"{what} is empty!")


def does_not_exist(name: str) -> SpiderError:
    """Unknown connection, driver, credential or region."""
    return SpiderError(f"{name}: does not exist!")


def resource_not_found(type_word: str, name: str, connection: str) -> SpiderError:
    return SpiderError(f"{type_word} '{name}' does not exist in connection '{connection}'")


def already_exists(type_word: str, name: str, connection: str) -> SpiderError:
    return SpiderError(f"{type_word} '{name}' already exists in connection '{connection}'")


def the_type_does_not_exist(type_word: str, name: str) -> SpiderError:
    """Unregister and rule operations on an unknown name."""
    return SpiderError(f"The {type_word} '{name}' does not exist!")


def validation(type_name: str, field_name: str) -> SpiderError:
    return SpiderError(f"resources.{type_name}:{field_name}'s input value is empty!")


def not_supported_driver(provider: str) -> SpiderError:
    return SpiderError(f"{provider} is not supported static Cloud Driver!!")
