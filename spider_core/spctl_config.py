"""``spctl`` configuration files: where the Spider server is, without a ``-s`` on every line.

Why two layouts: CB-Spider's scripts pass ``--config $CLIPATH/spctl.conf`` in CB-Spider's own layout
(``grpc: spidercli: server_addr/timeout``); a file written for spidertwin reads more plainly. Both are
YAML and both are accepted:

    spctl:                          # spidertwin's layout
      server: localhost:1024        # host:port or http(s)://host:port
      username: default             # optional, with password: Basic auth
      password: default
      timeout: 600s                 # optional: seconds, "600s", "10m"

    grpc:                           # CB-Spider's layout (server_addr and timeout are read)
      spidercli:
        server_addr: 127.0.0.1:1024
        timeout: 600s

The file is ``--config FILE``, else ``$SPCTL_CONFIG``; without either nothing is read. Flags win over
the file (``-s`` over ``server``), the file over the environment and the defaults.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

ENV_CONFIG = "SPCTL_CONFIG"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class SpctlConfig:
    server: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float | None = None
    path: str | None = None


def _duration(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    m = _DURATION.match(str(value))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{where}: timeout {value!r} is not a duration (e.g. 600, 600s, 10m)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def _text(section: dict[str, Any], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        raise ConfigError(f"{where}: '{key}' must be a non-empty string, not {value!r}")
    return str(value).strip()


def parse_config(doc: Any, where: str) -> SpctlConfig:
    """A loaded YAML document -> ``SpctlConfig`` (either layout)."""
    if doc is None:
        return SpctlConfig(path=where)
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with 'spctl:' (or CB-Spider's 'grpc: spidercli:'), "
                          f"found {type(doc).__name__}")
    ours, theirs = doc.get("spctl"), (doc.get("grpc") or {})
    if ours is not None:
        if not isinstance(ours, dict):
            raise ConfigError(f"{where}: 'spctl' must be a mapping")
        section, server_key = ours, "server"
    elif isinstance(theirs, dict) and isinstance(theirs.get("spidercli"), dict):
        section, server_key = theirs["spidercli"], "server_addr"
    else:
        raise ConfigError(f"{where}: no 'spctl:' section (nor CB-Spider's 'grpc: spidercli:')")
    timeout = section.get("timeout")
    return SpctlConfig(server=_text(section, server_key, where), username=_text(section, "username", where),
                       password=_text(section, "password", where),
                       timeout=None if timeout is None else _duration(timeout, where), path=where)


def load_config(path: str | None) -> SpctlConfig:
    """Read ``path`` (or ``$SPCTL_CONFIG``); an empty config when neither is given."""
    path = path or os.environ.get(ENV_CONFIG) or None
    if path is None:
        return SpctlConfig()
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    return parse_config(doc, path)
