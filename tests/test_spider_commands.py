"""The ``spider`` umbrella finds ``twin``, ``sgtest`` and ``load`` through entry points, not imports."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from spider_core import cli, commands


def test_the_three_packages_register_their_commands():
    found = {c.name: c for c in commands.discover()}
    assert {"twin", "sgtest", "load"} <= set(found)
    assert found["twin"].help == "run Cloud-Twin"
    assert found["sgtest"].help.startswith("verify security-group rules")
    assert found["load"].description.startswith("run a Locust load template headless")


@pytest.mark.parametrize("name,flag", [("twin", "--time-scale"), ("sgtest", "--suite"), ("load", "--resource")])
def test_each_command_parses_its_own_flags(capsys, name, flag):
    with pytest.raises(SystemExit) as done:
        cli.main([name, "--help"])
    assert done.value.code == 0
    assert flag in capsys.readouterr().out


def test_dispatch_runs_the_plugin_with_its_parsed_arguments(monkeypatch):
    seen = {}

    class Plugin:
        """spider probe: a test command."""

        @staticmethod
        def add_arguments(p: argparse.ArgumentParser) -> None:
            p.add_argument("--level", type=int, default=1)

        @staticmethod
        def run(args: argparse.Namespace) -> int:
            seen["level"] = args.level
            return 7

    eps = [EntryPoint("probe", "probe_mod", commands.GROUP)]
    monkeypatch.setattr(commands, "entry_points", lambda group: eps if group == commands.GROUP else [])
    monkeypatch.setattr(EntryPoint, "load", lambda self: Plugin)
    assert cli.main(["probe", "--level", "3"]) == 7 and seen == {"level": 3}


def test_a_command_that_cannot_load_says_why(monkeypatch, capsys):
    eps = [EntryPoint("broken", "no_such_module_anywhere", commands.GROUP)]
    monkeypatch.setattr(commands, "entry_points", lambda group: eps)
    assert cli.main(["broken"]) == 2
    err = capsys.readouterr().err
    assert "spider broken: unavailable" in err and "no_such_module_anywhere" in err


def test_the_umbrella_loads_the_suites_only_to_run_them():
    code = ("import sys, spider_core.cli\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('sgtest', 'concurrency')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
