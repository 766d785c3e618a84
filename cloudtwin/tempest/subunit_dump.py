"""Turn a subunit v2 stream (stdin) into one JSON object per test (stdout): id, status, reason.

Run by the Tempest venv's Python (it has python-subunit and testtools; the project's venv need not),
so this file imports nothing from the project.
"""

from __future__ import annotations

import json
import sys


def _text(details: dict, name: str) -> str:
    content = details.get(name)
    if content is None:
        return ""
    try:
        return b"".join(bytes(part) for part in content.iter_bytes()).decode("utf-8", "replace")
    except Exception:  # a detail that cannot be read is just left out
        return ""


def _reason(details: dict) -> str:
    """The last non-empty lines of the traceback (the exception), or a skip's reason."""
    text = _text(details, "traceback") or _text(details, "reason")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-3:])[:2000]


def main() -> int:
    import subunit
    import testtools

    def emit(test: dict) -> None:
        if test["status"] in ("exists", None):
            return
        json.dump({"id": test["id"], "status": test["status"], "reason": _reason(test["details"])}, sys.stdout)
        sys.stdout.write("\n")

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(emit)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    return 0


if __name__ == "__main__":
    sys.exit(main())
