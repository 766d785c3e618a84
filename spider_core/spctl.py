"""``spctl``: CB-Spider-compatible command line (contract section 13), generated from the client's
route table (:data:`spider_core.client.ROUTES`).

Grammar: ``spctl <resource> <verb> [flags]`` where the operationId ``<verb>-<resource...>`` is split at
the first ``-`` (``create-vpc`` -> ``vpc create``, ``get-vm-status`` -> ``vm-status get``). Renames:
``connection-config`` -> ``connection`` (the old name stays as an alias), ``vm-spec`` -> ``vmspec``.

Flags: global ``-s/--server host:port`` (default ``localhost:1024``), ``-u/--username``,
``-p/--password`` (fallback ``SPIDER_USERNAME``/``SPIDER_PASSWORD``; Basic auth only when both are
set), ``-v/--version``. Per command: query parameters become ``--<Name>`` except ConnectionName
(``-c/--ConnectionName``); path parameters become ``--<Name>`` except ``Name`` (``-n/--Name``); the body
is ``-d/--data '<json>'`` (``@file`` reads a file). Registration bodies can also be built from their
field flags (``spctl driver register --DriverName d --ProviderName MOCK --DriverLibFileName x.so``).
DELETE operations take ConnectionName from the ``-d`` body (no ``-c``).

Output: the JSON answer indented by 2 spaces (coloured only on a TTY); errors as
``{"message": "..."}`` with a non-zero exit status.

CB-Spider's documented grammar works too (``spider_core/spctl_compat.py`` translates it): ``-i/--input
json|yaml`` for the body (default: JSON, else YAML), ``-o/--output json|yaml``, ``-d`` as a string,
``@file`` or ``-`` (stdin), ``-f/--infile FILE``, ``--cname`` for the connection of any command,
``--config FILE`` for the server address (``spider_core/spctl_config.py``), flags anywhere on the line
and CB-Spider's verbs (``vm suspend``, ``vpc listall``, ``security get -n``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence, TextIO

from spider_core.client import (DEFAULT_TIMEOUT, ROUTES, Route, SpiderAPIError, SpiderClient,
                                render_request)
from spider_core.spctl_compat import translate
from spider_core.spctl_config import ConfigError, load_config

DEFAULT_SERVER = "localhost:1024"
RENAMES = {"connection-config": "connection", "vm-spec": "vmspec"}
ALIASES = {"connection": ["connection-config"]}
EXAMPLE_CONN = "mock-config01"

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def command_of(op_id: str) -> tuple[str, str]:
    """``create-vpc`` -> ``("vpc", "create")``: split at the first ``-``, then apply the renames."""
    verb, _, resource = op_id.partition("-")
    if not resource:
        raise ValueError(f"operationId {op_id!r} has no resource part")
    return RENAMES.get(resource, resource), verb


# ``spctl job wait``: GET /job/{Id}?wait= repeated until the job finishes (not a route of its own)
JOB_WAIT = Route("wait-job", "GET", "/job/{Id}", query=("timeout",), family="job",
                 summary="Wait until a job finishes (long-polls GET /job/{Id}?wait=; --timeout S, default 600)")


def commands() -> dict[tuple[str, str], Route]:
    """Every ``(resource, verb)`` with its route (unique by construction; checked by the tests)."""
    return {command_of(r.op_id): r for r in (*ROUTES, JOB_WAIT)}


# ---- flags ---------------------------------------------------------------------------------------

class Flag:
    """One per-command flag: where its value goes (path/query/field/data/file) and whether required."""

    def __init__(self, kind: str, name: str, required: bool) -> None:
        self.kind, self.name, self.required = kind, name, required
        self.dest = f"{kind}__{name}"

    @property
    def options(self) -> list[str]:
        if self.kind == "data":
            return ["-d", "--data"]
        if self.name == "ConnectionName":
            return ["-c", "--ConnectionName"]
        if self.name == "Name" and self.kind == "path":
            return ["-n", "--Name"]
        return [f"--{self.name}"]


def flags_of(rt: Route) -> list[Flag]:
    out: list[Flag] = [Flag("path", p, True) for p in rt.path_params]
    if rt.conn == "query":
        out.append(Flag("query", "ConnectionName", True))
    out += [Flag("query", q, q in rt.required) for q in rt.query]
    if rt.body in ("conn", "reqinfo"):
        out.append(Flag("data", "data", True))
    elif rt.body == "raw":
        out.append(Flag("data", "data", False))  # required unless field flags are given
        out += [Flag("field", f, False) for f in rt.fields]
    elif rt.body == "file":
        out.append(Flag("file", "file", True))
    return out


def example_bodies(rt: Route) -> list[Any]:
    """Two example bodies (minimal, full) generated from the route's schema examples."""
    if rt.body == "conn":
        return [{"ConnectionName": EXAMPLE_CONN}, {"ConnectionName": EXAMPLE_CONN}]
    if rt.body == "reqinfo":
        minimal = {"ConnectionName": EXAMPLE_CONN, "ReqInfo": rt.example or {}}
        full = {"ConnectionName": EXAMPLE_CONN, "ReqInfo": rt.example_full or rt.example or {}}
        if rt.op_id.split("-")[0] in ("create", "start") or rt.op_id == "add-subnet":
            full["IDTransformMode"] = "ON"
        return [minimal, full]
    if rt.body == "raw":
        return [rt.example or {}, rt.example_full or rt.example or {}]
    return []


# ---- parser --------------------------------------------------------------------------------------

def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("-s", "--server", help=f"Spider server host:port (default {DEFAULT_SERVER})",
                        **({"default": None} | d))
    parser.add_argument("-u", "--username", help="user name (env SPIDER_USERNAME)", **({"default": None} | d))
    parser.add_argument("-p", "--password", help="password (env SPIDER_PASSWORD)", **({"default": None} | d))
    parser.add_argument("-v", "--version", action="store_true", help="print the version and exit",
                        **({"default": False} | d))
    parser.add_argument("-i", "--input", choices=("json", "yaml"), metavar="json|yaml",
                        help="format of the -d body (default: JSON, else YAML)", **({"default": None} | d))
    parser.add_argument("-o", "--output", choices=("json", "yaml"), metavar="json|yaml",
                        help="format of the answer (default json)", **({"default": None} | d))
    parser.add_argument("--config", metavar="FILE", help="config file with the server address (env SPCTL_CONFIG)",
                        **({"default": None} | d))
    parser.add_argument("--cname", metavar="CONNECTION",
                        help="connection name for any command (query or body, as the route wants it)",
                        **({"default": None} | d))
    parser.add_argument("--async", dest="run_async", action="store_true",
                        help="run a create, delete or VM control as a job: print the job at once "
                             "(then: spctl job wait --Id ID)", **({"default": False} | d))


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="spctl", allow_abbrev=False,
        description="CB-Spider compatible command line: spctl <resource> <verb> [flags]",
        epilog="Run 'spctl <resource> --help' for the verbs of a resource.")
    _global_flags(top, suppress=False)
    resources = top.add_subparsers(dest="resource", metavar="<resource>", title="resources")

    grouped: dict[str, list[tuple[str, Route]]] = {}
    for (res, verb), rt in commands().items():
        grouped.setdefault(res, []).append((verb, rt))

    for res in sorted(grouped):
        verbs_list = grouped[res]
        rp = resources.add_parser(
            res, aliases=ALIASES.get(res, []), allow_abbrev=False,
            help=", ".join(v for v, _ in verbs_list),
            description=f"spctl {res} <verb> [flags]")
        _global_flags(rp, suppress=True)
        rp.set_defaults(_rparser=rp)
        verbs = rp.add_subparsers(dest="verb", metavar="<verb>", title="verbs")
        for verb, rt in verbs_list:
            vp = verbs.add_parser(
                verb, allow_abbrev=False, help=f"{rt.summary} [{rt.method} {rt.full_path}]",
                description=f"{rt.summary}\n\n{rt.method} {rt.full_path}  (operationId {rt.op_id})",
                formatter_class=argparse.RawDescriptionHelpFormatter)
            _global_flags(vp, suppress=True)
            for f in flags_of(rt):
                help_ = {"path": "path parameter", "query": "query parameter", "data": "request body (JSON, or @file)",
                         "field": "body field (used when -d is not given)", "file": "file to upload"}[f.kind]
                if f.required:
                    help_ += " (required)"
                vp.add_argument(*f.options, dest=f.dest, metavar=f.name if f.kind != "data" else "JSON",
                                default=None, help=help_)
            vp.set_defaults(_route=rt, _vparser=vp)
    return top


# ---- output --------------------------------------------------------------------------------------

_COLOURS = {"key": "\x1b[34;1m", "str": "\x1b[32m", "num": "\x1b[36m", "lit": "\x1b[35m", "end": "\x1b[0m"}


def _colourise(text: str) -> str:
    import re

    token = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|\b(true|false|null)\b')

    def paint(m: re.Match) -> str:
        c = _COLOURS
        if m.group(1):
            kind = "key" if m.group(2) else "str"
            return f"{c[kind]}{m.group(1)}{c['end']}{m.group(2) or ''}"
        if m.group(3):
            return f"{c['num']}{m.group(3)}{c['end']}"
        return f"{c['lit']}{m.group(4)}{c['end']}"

    return token.sub(paint, text)


def render(obj: Any, stream: TextIO, fmt: str = "json") -> str:
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    if isinstance(obj, (dict, list)):
        text = json.dumps(obj, indent=2, ensure_ascii=False)
        isatty = getattr(stream, "isatty", None)
        if isatty is not None and isatty():
            text = _colourise(text)
        return text
    return str(obj).rstrip("\n")


def print_error(message: str, stream: TextIO | None = None, fmt: str = "json") -> None:
    stream = stream or sys.stdout
    message = message.replace("connectionName is empty!", "ConnectionName is empty!")
    print(render({"message": message}, stream, fmt), file=stream)


def usage_error(vp: argparse.ArgumentParser, rt: Route, missing: list[str]) -> int:
    err = sys.stderr
    names = ", ".join(f'"{m}"' for m in missing)
    print(f"Error: required flag(s) {names} not set", file=err)
    vp.print_usage(err)
    examples = example_bodies(rt)
    res, verb = command_of(rt.op_id)
    if examples:
        print("\nExample JSON 1 (minimal):", file=err)
        print(f"  spctl {res} {verb} -d '{json.dumps(examples[0], separators=(',', ':'))}'", file=err)
        print("\nExample JSON 2 (full):", file=err)
        print(json.dumps(examples[1], indent=2), file=err)
    print(f"\nRun 'spctl {res} {verb} --help' for all flags.", file=err)
    return EXIT_USAGE


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("spidertwin")
    except Exception:  # noqa: BLE001 - not installed: still answer
        return "0.1.0"


# ---- main ----------------------------------------------------------------------------------------

def read_body(text: str, fmt: str | None = None) -> Any:
    """``-d``: the text itself, ``@file``, or ``-``/``@-`` for standard input; parsed as ``fmt``
    (``json``, ``yaml``, or None: JSON, else YAML - YAML being a superset of JSON's documents)."""
    if text in ("-", "@-"):
        text = sys.stdin.read()
    elif text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    if not text.strip():
        raise ValueError("the body is empty")
    if fmt == "json":
        return json.loads(text)
    try:
        return json.loads(text)
    except ValueError as json_error:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            if fmt == "yaml":
                raise ValueError(f"not valid YAML: {exc}") from None
            raise ValueError(f"neither JSON ({json_error}) nor YAML") from None


def _key(body: Any, name: str) -> Any:
    """``body[name]`` with CB-Spider's case-insensitive keys (None when absent or not a mapping)."""
    if isinstance(body, dict):
        for k, v in body.items():
            if isinstance(k, str) and k.lower() == name.lower():
                return v
    return None


def prepare_from_args(ns: argparse.Namespace) -> tuple[Route, Any, list[str]]:
    """Turn parsed flags into a :class:`Prepared` request; returns (route, prepared|None, missing)."""
    rt: Route = ns._route
    path: dict[str, str] = {}
    query: dict[str, str] = {}
    fields: dict[str, Any] = {}
    data: str | None = None
    file: str | None = None
    missing: list[str] = []
    cname = getattr(ns, "cname", None)
    raw = getattr(ns, "data__data", None)
    parsed = read_body(raw, getattr(ns, "input", None)) if raw not in (None, "") else None
    for f in flags_of(rt):
        value = getattr(ns, f.dest, None)
        if (value is None or value == "") and f.kind == "query" and f.name == "ConnectionName":
            value = cname
        if (value is None or value == "") and f.kind == "path":
            found = _key(parsed, f.name)  # CB-Spider's bodies carry e.g. VPCName for add-subnet
            value = found if isinstance(found, str) else None
        if (value is None or value == "") and f.kind == "data" and cname and rt.body == "conn":
            value = json.dumps({"ConnectionName": cname})
        if value is None or value == "":
            if f.required:
                missing.append(f.name)
            continue
        if f.kind == "path":
            path[f.name] = value
        elif f.kind == "query":
            query[f.name] = value
        elif f.kind == "field":
            fields[f.name] = value
        elif f.kind == "data":
            data = value
        elif f.kind == "file":
            file = value
    if rt.body == "raw" and data is None and not fields:
        missing.append("data")
    if missing:
        return rt, None, missing
    body: Any = None
    if data is not None:
        body = parsed if data == raw else read_body(data)
        if cname and isinstance(body, dict) and _key(body, "ConnectionName") is None \
                and rt.body in ("conn", "reqinfo"):
            body = {"ConnectionName": cname, **body}
    elif fields:
        body = {}
        for k, v in fields.items():
            try:
                body[k] = json.loads(v) if v.lstrip()[:1] in "[{" else v
            except ValueError:
                body[k] = v
    return rt, render_request(rt, path, query, body, file), []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(translate(list(sys.argv[1:] if argv is None else argv), commands()))
    if ns.version:
        print(f"spctl version {_version()} (spidertwin, CB-Spider compatible)")
        return EXIT_OK
    if not getattr(ns, "resource", None):
        parser.print_help()
        return EXIT_OK
    if not getattr(ns, "verb", None):
        ns._rparser.print_help()
        return EXIT_OK

    fmt = ns.output or "json"
    try:
        config = load_config(ns.config)
    except ConfigError as exc:
        print_error(str(exc), fmt=fmt)
        return EXIT_USAGE
    try:
        rt, prepared, missing = prepare_from_args(ns)
    except (ValueError, OSError) as exc:
        print_error(f"invalid -d/--data: {exc}", fmt=fmt)
        return EXIT_ERROR
    if missing:
        return usage_error(ns._vparser, rt, missing)

    server = ns.server or config.server or DEFAULT_SERVER
    if ns.run_async:
        prepared.params["async"] = "true"
    try:
        with SpiderClient(server, ns.username or config.username, ns.password or config.password,
                          timeout=config.timeout or DEFAULT_TIMEOUT) as client:
            if rt is JOB_WAIT:
                result = client.wait_job(prepared.path.rsplit("/", 1)[-1],
                                         timeout=float(prepared.params.get("timeout") or 600))
            else:
                result = client.send(prepared)
    except SpiderAPIError as exc:
        print_error(exc.message, fmt=fmt)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - connection refused, timeout ...: still a JSON message
        print_error(f"{type(exc).__name__}: {exc}", fmt=fmt)
        return EXIT_ERROR
    try:
        print(render(result, sys.stdout, fmt), flush=True)
    except BrokenPipeError:  # `spctl ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
