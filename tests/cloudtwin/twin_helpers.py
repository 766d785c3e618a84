"""Cloud-Twin test helpers (a module of its own: ``conftest`` names clash between test folders)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig

FAST = 0.05  # lifecycle delays x0.05: BUILD -> ACTIVE in ~50 ms


class ThreadedTwin:
    """A twin running its own event loop on a thread, for blocking clients such as openstacksdk."""

    def __init__(self, config: TwinConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.server: TwinServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="twin", daemon=True)

    def start(self) -> "ThreadedTwin":
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            TwinServer(port=0, config=self.config).start(), self.loop).result(10)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def twin(self) -> Any:
        assert self.server is not None
        return self.server.twin

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the twin's loop thread (state is single-threaded)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def add_probe_route(srv: TwinServer, service: str = "compute", path: str = "/v2.1/_probe",
                    operation: str = "compute:probe:get", method: str = "GET") -> None:
    """A trivial authenticated route, so dispatcher-level behaviour is tested apart from any service."""
    from cloudtwin import wire

    async def probe(call: Any) -> Any:
        zone = call.query.get("zone")
        if zone:
            call.twin.faults.zone_check(call, zone)
        return wire.json_response(200, {"ok": True, "project": call.project.name})

    router = srv._runner.app["dispatcher"].router  # type: ignore[union-attr]
    router.add(service, method, path, probe, operation)


async def keystone_login(s: Any, url: str, *, project: str = "admin", cloud: str = "cloud-1") -> tuple[str, Any]:
    """A password login as admin/admin to ``project`` of ``cloud``: (token, the token document)."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "admin", "domain": {"name": cloud}}}},
        "scope": {"project": {"name": project, "domain": {"name": cloud}}}}}
    async with s.post(url + "/v3/auth/tokens", json=body) as r:
        assert r.status == 201, await r.text()
        return r.headers["X-Subject-Token"], (await r.json())["token"]


async def keystone_user(s: Any, url: str, *, project: str, role: str = "member", cloud: str = "cloud-1",
                        name: str | None = None) -> tuple[str, Any]:
    """A user of ``project`` (made if new) holding only ``role`` there (member, reader...), made through
    Keystone's admin API as admin/admin, then logged in: (token, the token document)."""
    admin, _ = await keystone_login(s, url, project="admin", cloud=cloud)
    h = {"X-Auth-Token": admin}
    async with s.get(f"{url}/v3/projects?name={project}", headers=h) as r:
        found = (await r.json())["projects"]
    if found:
        pid = found[0]["id"]
    else:
        async with s.post(f"{url}/v3/projects", json={"project": {"name": project}}, headers=h) as r:
            assert r.status == 201, await r.text()
            pid = (await r.json())["project"]["id"]
    name = name or f"{role}-of-{project}"
    async with s.post(f"{url}/v3/users", json={"user": {"name": name, "password": "pw-" + name}}, headers=h) as r:
        assert r.status in (201, 409), await r.text()
    async with s.get(f"{url}/v3/users?name={name}", headers=h) as r:
        uid = (await r.json())["users"][0]["id"]
    async with s.get(f"{url}/v3/roles?name={role}", headers=h) as r:
        rid = (await r.json())["roles"][0]["id"]
    async with s.put(f"{url}/v3/projects/{pid}/users/{uid}/roles/{rid}", headers=h) as r:
        assert r.status == 204, await r.text()
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "password": "pw-" + name, "domain": {"name": cloud}}}},
        "scope": {"project": {"id": pid}}}}
    async with s.post(url + "/v3/auth/tokens", json=body) as r:
        assert r.status == 201, await r.text()
        return r.headers["X-Subject-Token"], (await r.json())["token"]


def sdk_connect(url: str, *, cloud: str = "cloud-1", project: str = "p1", region: str = "RegionOne",
                user: str = "admin", password: str = "admin") -> Any:
    """Unmodified openstacksdk, logged in to one cloud of a twin."""
    import openstack

    return openstack.connect(auth_url=f"{url}/v3", username=user, password=password, project_name=project,
                             user_domain_name=cloud, project_domain_name=cloud, region_name=region,
                             load_yaml_config=False, load_envvars=False)


class OpenStackCli:
    """The unmodified ``openstack`` CLI (python-openstackclient, a test dependency) logged in to one
    project of one cloud of a twin; ``run`` checks the exit code, ``json`` parses ``-f json``.

    ``in_process`` runs each command through the CLI's own entry point (``openstackclient.shell.main``,
    what the ``openstack`` script calls) inside this process: the same code, without the second or more
    of imports each new process pays, for tests that run dozens of commands."""

    def __init__(self, url: str, cloud: str, project: str, *, user: str = "admin", password: str = "admin",
                 in_process: bool = False) -> None:
        self.in_process = in_process
        found = Path(sys.executable).with_name("openstack")
        binary = str(found) if found.exists() else shutil.which("openstack")
        assert binary, "python-openstackclient is a test dependency (pip install -e '.[test]')"
        self.binary = binary
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env.update({"OS_AUTH_URL": f"{url}/v3", "OS_USERNAME": user, "OS_PASSWORD": password,
                         "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": cloud,
                         "OS_PROJECT_DOMAIN_NAME": cloud, "OS_REGION_NAME": "RegionOne",
                         "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public",
                         "HOME": os.environ.get("HOME", "/tmp")})

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self.in_process:
            proc = self._run_here(list(args))
        else:
            proc = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=120,
                                  stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr[-2000:]}"
        return proc

    def _run_here(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        import contextlib
        import io

        from osc_lib import clientmanager
        from openstackclient import shell
        from openstackclient.common.clientmanager import ClientManager

        # The CLI hangs each service's client on the ClientManager *class* (osc_lib's ClientCache
        # descriptor keeps the first handle it makes): in one process, a second command would reuse the
        # first command's connection, catalog and token. A separate ``openstack`` process starts clean.
        for cls in ClientManager.__mro__:
            for attr in vars(cls).values():
                if isinstance(attr, clientmanager.ClientCache):
                    attr._handle = None
        saved = dict(os.environ)
        out, err = io.StringIO(), io.StringIO()
        try:
            os.environ.clear()
            os.environ.update(self.env)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = shell.main(args)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return subprocess.CompletedProcess(["openstack", *args], code or 0, out.getvalue(), err.getvalue())

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-f", "json").stdout)
