"""The boto3 end of MOCK faults: botocore event hooks that turn a fault decision into what AWS sends.

Decisions are made in the server (``mock_driver.faults``: one place holds the rules, counts, token
buckets, seeds and events) and travel with the call as a reserved parameter, ``SpidertwinFault``, so
they reach the boto3 client wherever it runs (the moto worker process by default). Two hooks on every
MOCK client do the rest:

* ``provide-client-params`` takes the decision out of the parameters (botocore would refuse an
  unknown parameter) into the call's context;
* ``before-call`` answers instead of moto: an EC2 or Query-protocol error body (``RequestLimitExceeded``,
  ``Unavailable``, a preset's code) parsed by botocore's own parser, so botocore raises the same
  ``ClientError`` a real AWS answer would; or a botocore connection error (``reset``) or read timeout
  (``hang``).

This module imports botocore only: the moto worker loads it without the server's dependencies.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

FAULT_PARAM = "SpidertwinFault"
_CONTEXT_KEY = "spidertwin_fault"


def install(client: Any) -> None:
    """Register the two hooks on one boto3 client (first in line, before anything that could send)."""
    client.meta.events.register_first("provide-client-params", _take_fault)
    client.meta.events.register_first("before-call", _answer_fault)


def _take_fault(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    fault = params.pop(FAULT_PARAM, None)
    if fault is not None:
        context[_CONTEXT_KEY] = fault


def _answer_fault(model: Any, context: dict[str, Any], params: dict[str, Any], **_: Any) -> Any:
    fault = context.get(_CONTEXT_KEY)
    if fault is None:
        return None
    url = params.get("url", "https://ec2.mock.amazonaws.com/")
    connection = fault.get("connection")
    if connection == "reset":
        from botocore.exceptions import ConnectionClosedError
        raise ConnectionClosedError(endpoint_url=url)
    if connection == "timeout":
        from botocore.exceptions import ReadTimeoutError
        raise ReadTimeoutError(endpoint_url=url)
    return error_response(model, int(fault["status"]), str(fault["code"]), str(fault["message"]))


def error_response(model: Any, status: int, code: str, message: str) -> tuple[Any, dict[str, Any]]:
    """``(http_response, parsed)`` for an AWS error, parsed by botocore from the service's own format."""
    from botocore.awsrequest import AWSResponse
    from botocore.parsers import create_parser

    protocol = model.metadata["protocol"]
    code_x, message_x = escape(code), escape(message)
    if protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>{code_x}</Code><Message>{message_x}</Message></Error></Errors>"
                "<RequestID>spidertwin-fault</RequestID></Response>")
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code_x}</Code><Message>{message_x}</Message>"
                "</Error><RequestId>spidertwin-fault</RequestId></ErrorResponse>")
    raw = body.encode("utf-8")
    headers = {"Content-Type": "text/xml", "x-spidertwin-fault": code}
    parsed = create_parser(protocol).parse({"status_code": status, "headers": headers, "body": raw},
                                           model.output_shape)
    return AWSResponse("https://mock.amazonaws.com/", status, headers, _Raw(raw)), parsed


class _Raw:
    """The raw stream ``AWSResponse`` wants (read once)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any, **__: Any) -> bytes:
        data, self._data = self._data, b""
        return data
