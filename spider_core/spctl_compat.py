"""CB-Spider's documented ``spctl`` grammar, translated onto spidertwin's ``spctl`` command line.

Why a translation rather than a second parser: CB-Spider's guides and scripts (its CLI examples,
``interface/cli-examples/*.sh``, ``examples.spctl``) were written for its cobra-based ``spctl``, whose
verbs and flags differ from the route-derived ones of ``spider_core.spctl``. Rewriting their argv into
ours keeps one parser, one request builder and one set of error messages, and makes every documented
line run unchanged:

* verbs and resources: ``security`` (= ``securitygroup``), ``os list``, ``driver|credential|region
  create|delete``, ``vm suspend|resume|reboot`` (``vm control --action``), ``vm liststatus|getstatus``,
  ``vm terminatecsp``, ``<res> listall|deletecsp``, ``vmspec listorg|getorg``, ``vpc add-subnet|
  remove-subnet|removecsp-subnet``;
* flags anywhere on the line (cobra parses them so: ``spctl --cname c vm get -n v``), ``-n/--name``
  for the command's name parameter, ``--vname``/``--sname``/``--id`` for VPC, subnet and CSP ids,
  ``-d/--indata`` and ``-f/--infile`` for the body.

``--cname``, ``-i/--input``, ``-o/--output`` and ``--config`` are flags of ``spctl`` itself (they mean
the same in both grammars); this module only moves them after the command.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

RESOURCE_ALIASES = {"security": "securitygroup", "os": "cloudos"}

# (resource, CB-Spider verb) -> (resource, verb, preset flags)
VERB_ALIASES: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {
    **{(res, "create"): (res, "register", ()) for res in ("driver", "credential", "region")},
    **{(res, "delete"): (res, "unregister", ()) for res in ("driver", "credential", "region")},
    **{("vm", action): ("vm", "control", ("--action", action)) for action in ("suspend", "resume", "reboot")},
    ("vm", "liststatus"): ("vm-status", "list", ()),
    ("vm", "getstatus"): ("vm-status", "get", ()),
    ("vm", "terminatecsp"): ("csp-vm", "terminate", ()),
    **{(res, "listall"): (f"all-{res}", "list", ()) for res in ("vpc", "securitygroup", "keypair", "vm", "nlb")},
    **{(res, "deletecsp"): (f"csp-{res}", "delete", ()) for res in ("vpc", "securitygroup", "keypair", "nlb")},
    ("vmspec", "listorg"): ("org-vm-spec", "list", ()),
    ("vmspec", "getorg"): ("org-vm-spec", "get", ()),
    ("vpc", "add-subnet"): ("subnet", "add", ()),
    ("vpc", "remove-subnet"): ("subnet", "remove", ()),
    ("vpc", "removecsp-subnet"): ("csp-subnet", "remove", ()),
}

# CB-Spider flag -> ours (per command), or a fixed path parameter
RENAMED_FLAGS = {"--indata": "-d", "--vname": "--VPCName", "--sname": "--SubnetName",
                 "--id": "--Id"}
NAME_FLAGS = ("-n", "--name")
SWITCHES = frozenset({"-h", "--help", "-v", "--version", "--async"})  # flags that take no value


def _split(argv: Sequence[str]) -> tuple[list[str], list[list[str]]] | None:
    """Positionals and option groups (``[flag]`` or ``[flag, value]``), in order. None when the line
    holds something this grammar does not know (a ``--`` or a flag missing its value): argparse
    then reports it as usual."""
    positionals: list[str] = []
    options: list[list[str]] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return None
        if token.startswith("-") and len(token) > 1 and not _is_number(token):
            if token in SWITCHES or "=" in token:
                options.append([token])
            elif i + 1 < len(argv):
                options.append([token, argv[i + 1]])
                i += 1
            else:
                return None
        else:
            positionals.append(token)
        i += 1
    return positionals, options


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _name_flag(route: Any) -> str | None:
    """The flag ``-n/--name`` stands for: the route's ``Name`` path parameter, else its only one."""
    params = list(route.path_params)
    if "Name" in params:
        return "--Name"
    return f"--{params[0]}" if len(params) == 1 else None


def translate(argv: Sequence[str], table: Mapping[tuple[str, str], Any]) -> list[str]:
    """CB-Spider's ``spctl`` argv -> ours. Lines already in our grammar come back unchanged in
    meaning; anything unknown is left for argparse to report."""
    split = _split(argv)
    if split is None:
        return list(argv)
    positionals, options = split
    if len(positionals) < 2:
        return list(argv)
    resource = RESOURCE_ALIASES.get(positionals[0], positionals[0])
    verb = positionals[1]
    presets: tuple[str, ...] = ()
    if (resource, verb) not in table and (resource, verb) in VERB_ALIASES:
        resource, verb, presets = VERB_ALIASES[(resource, verb)]
    route = table.get((resource, verb))
    if route is None:
        return list(argv)
    out = [resource, verb, *positionals[2:]]
    for group in options:
        flag, *value = group
        if flag in NAME_FLAGS:
            flag = _name_flag(route) or flag
        elif flag == "--infile" or flag == "-f":
            flag, value = "-d", [f"@{value[0]}"] if value else value
        else:
            flag = RENAMED_FLAGS.get(flag, flag)
        out += [flag, *value]
    return out + list(presets)
