"""``spider twin exec SERVER -- CMD...`` and ``spider twin ssh SERVER [-- CMD...]``: a shell's way into a
running twin's data-plane VMs.

Both talk to the twin's admin API (``--address``, default 127.0.0.1:8192 or ``$CLOUDTWIN_ADDRESS``;
``X-Twin-Admin-Token`` from ``--admin-token`` or ``$CLOUDTWIN_ADMIN_TOKEN``). ``exec`` runs the command
through ``POST /_twin/vms/{server}/exec`` (no SSH, keys or security groups involved) and exits with its
exit code. ``ssh`` asks ``GET /_twin/vms/{server}`` for the floating IP (else the fixed IP) and the image's
login user, then replaces itself with the real ``ssh`` client, so the key, the security groups and sshd
are exercised exactly as a user's login would. Host keys are not remembered: every VM makes new ones and
addresses are reused, so known_hosts would only collect false alarms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, NoReturn

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")


class CliError(Exception):
    """A message for the user; the command exits with status 2 (1 is left to the remote command)."""


# ---- arguments -------------------------------------------------------------------------------------

def _client_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options of ``exec`` and ``ssh``. ``suppress``: keep the value ``spider twin --address`` set
    when the sub-command does not repeat it."""
    default: Any = argparse.SUPPRESS if suppress else None
    p.add_argument("--address", default=default, help="the twin's host:port (default: $CLOUDTWIN_ADDRESS or "
                                                       "127.0.0.1:8192)")
    p.add_argument("--admin-token", default=default, help="X-Twin-Admin-Token ($CLOUDTWIN_ADMIN_TOKEN)")
    p.add_argument("--in-cloud", dest="vm_cloud", default=default, metavar="CLOUD",
                   help="look SERVER up in this cloud only (when a name is used in several clouds)")


def add_subcommands(p: argparse.ArgumentParser) -> None:
    """``exec`` and ``ssh`` under ``spider twin``; without one, ``spider twin`` runs the twin."""
    sub = p.add_subparsers(dest="twin_command", metavar="{exec,ssh}",
                           help="without a sub-command: run the twin; with one: reach a VM of a running twin")
    ex = sub.add_parser("exec", help="run a command in a data-plane VM (no SSH needed)",
                        description="Run CMD inside the VM of SERVER (a server id or name) through the admin "
                                    "API and exit with its exit code. Options go before SERVER or before '--'.",
                        usage="spider twin exec [options] SERVER -- CMD [ARG...]")
    _client_options(ex, suppress=True)
    _exec_options(ex, suppress=False)
    ex.add_argument("server", metavar="SERVER")
    ex.add_argument("rest", nargs=argparse.REMAINDER, metavar="-- CMD")
    ssh = sub.add_parser("ssh", help="ssh into a data-plane VM as the image's login user",
                         description="Look up SERVER's floating IP (else its fixed IP) and login user, then run "
                                     "the real ssh client; CMD after '--' runs remotely.",
                         usage="spider twin ssh [--key FILE] [--user USER] [options] SERVER [-- CMD...]")
    _client_options(ssh, suppress=True)
    _ssh_options(ssh, suppress=False)
    ssh.add_argument("server", metavar="SERVER")
    ssh.add_argument("rest", nargs=argparse.REMAINDER, metavar="-- CMD")


def _exec_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    p.add_argument("--timeout", type=float, default=argparse.SUPPRESS if suppress else 30.0,
                   help="seconds the command may run (default 30, at most 600)")
    p.add_argument("--stdin", metavar="FILE", default=argparse.SUPPRESS if suppress else None,
                   help="send FILE ('-': this command's standard input) to the command's standard input")


def _ssh_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    p.add_argument("-i", "--key", metavar="FILE", default=argparse.SUPPRESS if suppress else None,
                   help="the private key (e.g. the one Spider's keypair create returned)")
    p.add_argument("-l", "--user", default=argparse.SUPPRESS if suppress else None,
                   help="log in as USER instead of the image's login user")


def _late_parser(kind: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"spider twin {kind} SERVER", add_help=True)
    _client_options(p, suppress=True)
    (_exec_options if kind == "exec" else _ssh_options)(p, suppress=True)
    return p


def split_command(args: argparse.Namespace) -> list[str]:
    """The remote command from ``args.rest``; options written after SERVER (``vm --timeout 5 -- ls``)
    are parsed into ``args``. argparse keeps or drops the first ``--`` depending on the Python version, so
    both are handled."""
    rest = list(args.rest)
    if rest and rest[0] == "--":
        return rest[1:]
    late = _late_parser(args.twin_command)
    known = {s for a in late._actions for s in a.option_strings}
    if not rest or rest[0].split("=", 1)[0] not in known:
        return rest
    cut = rest.index("--") if "--" in rest else len(rest)
    late.parse_args(rest[:cut], namespace=args)
    return rest[cut + 1:]


# ---- the admin API ---------------------------------------------------------------------------------

def base_url(address: str | None) -> str:
    from cloudtwin.address import DEFAULT_ADDRESS, parse_address

    host, port = parse_address(address or os.environ.get("CLOUDTWIN_ADDRESS") or DEFAULT_ADDRESS)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    url = base_url(args.address) + "/_twin" + path
    cloud = getattr(args, "vm_cloud", None)
    if cloud:
        url += "?" + urllib.parse.urlencode({"cloud": cloud})
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    token = args.admin_token or os.environ.get("CLOUDTWIN_ADMIN_TOKEN")
    if token:
        req.add_header("X-Twin-Admin-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise CliError(f"the twin answered {exc.code}: {_message(exc.read())}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the twin at {base_url(args.address)}: {reason} (is `spider twin` running? "
                       "--address / $CLOUDTWIN_ADDRESS)") from None
    except ValueError:
        raise CliError("the twin's answer is not JSON: is --address a Cloud-Twin?") from None


def _message(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        return str(doc["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip()[:500] or "no details"


def _server_path(server: str) -> str:
    return "/vms/" + urllib.parse.quote(server, safe="")


# ---- the commands ----------------------------------------------------------------------------------

def _read_stdin(source: str | None) -> str | None:
    if source is None:
        return None
    try:
        if source == "-":
            return sys.stdin.read()
        with open(source, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--stdin {source}: {getattr(exc, 'strerror', None) or exc}") from None


def run_exec(args: argparse.Namespace, command: list[str]) -> int:
    if not command:
        raise CliError("give the command after '--': spider twin exec SERVER -- CMD [ARG...]")
    body: dict[str, Any] = {"argv": command, "timeout": args.timeout}
    stdin = _read_stdin(args.stdin)
    if stdin is not None:
        body["stdin"] = stdin
    result = _call(args, "POST", _server_path(args.server) + "/exec", body, timeout=args.timeout + 15)
    if not isinstance(result, dict):
        raise CliError("the twin's answer has no exit code")
    sys.stdout.write(str(result.get("stdout") or ""))
    sys.stdout.flush()
    sys.stderr.write(str(result.get("stderr") or ""))
    sys.stderr.flush()
    code = result.get("exit_code")
    return code if isinstance(code, int) and 0 <= code <= 255 else 1


def ssh_argv(info: dict[str, Any], *, key: str | None, user: str | None, command: list[str]) -> list[str]:
    """The ``ssh`` command line for a VM described by ``GET /_twin/vms/{server}``."""
    addrs = info.get("addresses") or {}
    floating = [a for a in addrs.get("floating") or [] if isinstance(a, str)]
    fixed = [a for a in addrs.get("fixed") or [] if isinstance(a, str)]
    pick = sorted(floating, key=lambda a: ":" in a) or sorted(fixed, key=lambda a: ":" in a)
    if not pick:
        raise CliError(f"server {info.get('server_id')} has no IP address to connect to")
    login = user or info.get("login_user")
    if not login:
        raise CliError("the twin does not know this image's login user: give --user")
    argv = ["ssh", *SSH_OPTIONS]
    if key:
        argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
    return argv + [f"{login}@{pick[0]}", *command]


def run_ssh(args: argparse.Namespace, command: list[str],
            execvp: Callable[[str, list[str]], NoReturn] = os.execvp) -> int:
    info = _call(args, "GET", _server_path(args.server))
    if not isinstance(info, dict):
        raise CliError("the twin's answer does not describe a VM")
    if args.key and not os.path.isfile(args.key):
        raise CliError(f"--key {args.key}: no such file")
    argv = ssh_argv(info, key=args.key, user=args.user, command=command)
    if not info.get("ssh_ready"):
        print(f"spider twin ssh: sshd in {info.get('name') or args.server} is not ready yet; trying anyway",
              file=sys.stderr)
    binary = shutil.which("ssh")
    if binary is None:
        raise CliError("the ssh client is not installed (Debian: apt-get install openssh-client)")
    sys.stdout.flush()
    execvp(binary, argv)
    return 0


def run(args: argparse.Namespace) -> int:
    """``spider twin exec|ssh``; returns the exit status."""
    try:
        command = split_command(args)
        if args.twin_command == "exec":
            return run_exec(args, command)
        return run_ssh(args, command)
    except CliError as exc:
        print(f"spider twin {args.twin_command}: {exc}", file=sys.stderr)
        return 2
