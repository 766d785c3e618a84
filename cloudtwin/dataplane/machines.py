"""Twin VMs you can log into: each data-plane VM is a small machine inside its network namespace.

A machine is a process tree in its own mount, UTS and PID namespaces, in its own cgroup:

    unshare (in the VM's netns; dies with the twin: PR_SET_PDEATHSIG)
      tini                      PID 1 of the VM, reaps orphans
        sh boot.sh              mounts the VM's root and execs into it
          sh /etc/cloudtwin/init.sh (chrooted)
            sshd                OpenSSH, the VM's own host keys and users
            user-data scripts   once, at first boot, output to the console log
            sleep infinity      keeps the VM up

The VM's root is an overlay of the host's ``/`` (read-only below) and a per-VM upper directory on the
twin's tmpfs (``/run/cloudtwin/<prefix>/<vm>/upper``), so one VM's files are not another's; ``/home``,
``/root``, ``/tmp``, ``/var/tmp``, ``/var/log``, ``/srv`` and ``/mnt`` start empty (opaque), so no host
file under them shows through. The twin writes the upper directory before the first boot: the
login users with the Nova keypair's key (and cloud-config's users), host keys made per VM,
``sshd_config`` with password and root logins off, the hostname, cloud-init's scripts.

Power follows Nova: stop and delete kill the tree (``cgroup.kill``), suspend and pause freeze it
(``cgroup.freeze``), resume and unpause thaw it, reboot kills and boots again (user-data does not run
twice, as cloud-init's per-instance semaphore says). A twin killed with SIGKILL takes its machines with
it (unshare gets SIGKILL and kills the VM's PID 1); its tmpfs and empty cgroups go at the next start.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import grp
import hashlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudtwin.dataplane import cgroups, cloudinit

log = logging.getLogger("cloudtwin.dataplane")

TOOLS = ("unshare", "nsenter", "tini", "chroot", "mount", "umount")
SSHD = "/usr/sbin/sshd"
OPAQUE = ("home", "root", "tmp", "var/tmp", "var/log", "srv", "mnt", "media", "run")
CONSOLE_MAX = 1024 * 1024              # bytes of console log kept (the tail)
EXEC_OUTPUT_MAX = 1024 * 1024
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


class MachineError(RuntimeError):
    """A machine cannot be made, booted or reached."""


def preflight() -> list[str]:
    """What this host lacks to run machines (empty when it has everything)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not Path(SSHD).exists():
        missing.append("sshd (apt-get install openssh-server)")
    if cgroups.detect() is None:
        missing.append("a writable cgroup v2 hierarchy")
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("overlayfs")
    return missing


@dataclass
class MachineSpec:
    """What a machine is made from: the server as Nova has it."""

    server_id: str
    hostname: str
    login_user: str
    public_keys: list[str]
    vcpus: int
    ram_mib: int
    user_data: str | None
    addresses: list[str] = field(default_factory=list)


@dataclass
class Machine:
    spec: MachineSpec
    name: str                       # vm<index>, its directory and cgroup name
    netns: str
    dir: Path
    cgroup: cgroups.VmCgroup
    fingerprints: list[tuple[str, str]] = field(default_factory=list)   # (type, SHA256:...)
    proc: subprocess.Popen[bytes] | None = None
    boots: int = 0
    frozen: bool = False
    booted_at: float | None = None

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def console_path(self) -> Path:
        return self.dir / "console.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def ssh_ready(self) -> bool:
        return self.running and not self.frozen and (self.upper / "etc/cloudtwin/ssh-ready").exists()


def _host_ids() -> tuple[int, int]:
    """The first uid and gid above every account the host has (VM users never alias a host user)."""
    uid = max([999] + [p.pw_uid for p in pwd.getpwall() if p.pw_uid < 60000]) + 1
    gid = max([999] + [g.gr_gid for g in grp.getgrall() if g.gr_gid < 60000]) + 1
    return max(uid, 1000), max(gid, 1000)


def _ssh_fingerprint(public_line: str) -> str:
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _host_keys() -> list[tuple[str, str, str]]:
    """Fresh host keys for one VM: (type, private OpenSSH PEM, public line). Ed25519 and ECDSA are
    made in microseconds; RSA would cost ~50 ms a VM and no current client needs it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    out = []
    for kind, key in (("ed25519", ed25519.Ed25519PrivateKey.generate()),
                      ("ecdsa", ec.generate_private_key(ec.SECP256R1()))):
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        out.append((kind, private, public + " root@cloudtwin"))
    return out


def _set_pdeathsig() -> None:
    """Runs in the child before exec: die when the twin dies, even by SIGKILL."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


SSHD_CONFIG = """\
# Cloud-Twin VM: key logins only, as a cloud image ships it
Port 22
AddressFamily any
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
X11Forwarding no
PrintMotd no
PidFile /run/sshd.pid
MaxStartups 200:30:400
# classic key exchanges only: the post-quantum sntrup761x25519 hybrid that clients prefer costs ~0.12 s
# of CPU per login here (twice the rest of a login), which dominates when 100 clients log in at once
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group14-sha256
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""

BOOT_SH = """\
#!/bin/sh
# Runs as the VM's first process after tini, in fresh mount, UTS and PID namespaces.
set -e
D={dir}
R=$D/root
mount -t overlay overlay -o lowerdir=/,upperdir=$D/upper,workdir=$D/work $R
mount -t proc -o nosuid,nodev,noexec proc $R/proc
mount --rbind /sys $R/sys
mount --rbind /dev $R/dev
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $R/dev/pts
mount --bind $R/dev/pts/ptmx $R/dev/ptmx
mount -t tmpfs -o mode=0755,size=32m tmpfs $R/run
hostname {hostname}
exec chroot $R /bin/sh /etc/cloudtwin/init.sh
"""

INIT_SH = """\
#!/bin/sh
# The VM's boot, inside its own root.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
start=$(cut -d' ' -f1 /proc/uptime)
mkdir -p /run/sshd /var/log /var/lib/cloud/instance/scripts
rm -f /etc/cloudtwin/ssh-ready
cat /etc/cloudtwin/console-head.txt
for f in /var/lib/cloud/instance/bootcmd/*; do [ -f "$f" ] && sh "$f"; done
/usr/sbin/sshd {sshd_flags}-E /var/log/sshd.log
n=0
while [ ! -s /run/sshd.pid ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
touch /etc/cloudtwin/ssh-ready
echo "cloud-init: sshd is listening on port 22"
if [ ! -e /var/lib/cloud/instance/boot-finished ]; then
  for f in /var/lib/cloud/instance/scripts/*; do
    [ -f "$f" ] || continue
    echo "cloud-init: running $(basename "$f")"
    sh -c "exec \\"$f\\"" < /dev/null &
    wait $! || echo "cloud-init: $(basename "$f") failed with exit code $?"
  done
  date -u +%s > /var/lib/cloud/instance/boot-finished
fi
echo "Cloud-init v. 23.1.2 finished at $(date -u -R). Datasource DataSourceOpenStackLocal.  Up $start seconds"
exec sleep infinity
"""


class Machines:
    """Every machine of one twin, under ``<run_dir>/<prefix>`` (a tmpfs the runtime mounts)."""

    def __init__(self, prefix: str, run_dir: Path) -> None:
        self.prefix = prefix
        self.base = run_dir / prefix
        self.layout = cgroups.detect()
        self.machines: dict[str, Machine] = {}        # by netns
        self._ids = _host_ids()
        self.sshd_flags = "-r " if sshd_version() < (9, 8) else ""

    # ---- the runtime's own lifecycle
    def start(self) -> None:
        missing = preflight()
        if missing:
            raise MachineError("twin VMs need " + ", ".join(missing))
        self.base.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(self.base):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711", "cloudtwin-vms", str(self.base)],
                           check=True, capture_output=True)

    def stop(self) -> None:
        for m in list(self.machines.values()):
            self._kill(m)
        self.machines.clear()
        remove_prefix(self.layout, self.base.parent, self.prefix)

    # ---- one machine
    def prepare(self, netns: str, name: str, spec: MachineSpec) -> Machine:
        """Make the VM's directory, upper root and cgroup (first boot only: a reboot keeps them)."""
        d = self.base / name
        m = Machine(spec, name, netns, d, cgroups.VmCgroup(self.layout, self.prefix, name))  # type: ignore[arg-type]
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        plan = cloudinit.plan(spec.user_data)
        self._write_root(m, plan)
        m.cgroup.create(spec.vcpus, spec.ram_mib)
        self.machines[netns] = m
        return m

    def _write_root(self, m: Machine, plan: cloudinit.BootPlan) -> None:
        up = m.upper
        for rel in OPAQUE:
            p = up / rel
            p.mkdir(parents=True, exist_ok=True)
            os.setxattr(p, "trusted.overlay.opaque", b"y")
        (up / "run").chmod(0o755)
        (up / "tmp").chmod(0o1777)
        (up / "var/tmp").chmod(0o1777)
        for rel in ("etc/ssh", "etc/cloudtwin", "etc/sudoers.d", "var/lib/cloud/instance/scripts",
                    "var/lib/cloud/instance/bootcmd", "proc", "sys", "dev", "run"):
            (up / rel).mkdir(parents=True, exist_ok=True)
        spec = m.spec
        (up / "etc/hostname").write_text(spec.hostname + "\n")
        hosts = ["127.0.0.1 localhost", f"127.0.1.1 {spec.hostname}", "::1 localhost ip6-localhost ip6-loopback"]
        (up / "etc/hosts").write_text("\n".join(hosts) + "\n")
        keys = _host_keys()
        for kind, private, public in keys:
            path = up / f"etc/ssh/ssh_host_{kind}_key"
            path.write_text(private)
            path.chmod(0o600)
            (up / f"etc/ssh/ssh_host_{kind}_key.pub").write_text(public + "\n")
        m.fingerprints = [(kind.upper(), _ssh_fingerprint(public)) for kind, _, public in keys]
        (up / "etc/ssh/sshd_config").write_text(SSHD_CONFIG)
        self._write_users(m, plan)
        for f in plan.files:
            self._write_file(up, f)
        for i, cmd in enumerate(plan.bootcmd):
            (up / f"var/lib/cloud/instance/bootcmd/{i:03d}").write_text(cmd + "\n")
        for name, text in plan.scripts:
            path = up / f"var/lib/cloud/instance/scripts/{name}"
            path.write_text(text)
            path.chmod(0o755)
        (up / "etc/cloudtwin/init.sh").write_text(INIT_SH.replace("{sshd_flags}", self.sshd_flags))
        (up / "etc/cloudtwin/console-head.txt").write_text(self._console_head(m, plan))
        (m.dir / "boot.sh").write_text(BOOT_SH.format(dir=m.dir, hostname=spec.hostname))

    def _write_users(self, m: Machine, plan: cloudinit.BootPlan) -> None:
        """The image's login user with the keypair's key, plus cloud-config's users, in the VM's own
        passwd, group, shadow and sudoers (the host's stay untouched: these files live in the upper)."""
        up = m.upper
        spec = m.spec
        users: dict[str, cloudinit.UserSpec] = {}
        default = cloudinit.UserSpec(spec.login_user, list(spec.public_keys) + plan.default_user_keys,
                                     "/bin/bash", ["sudo"], True)
        users[default.name] = default
        for u in plan.users:
            if u.name in users:
                users[u.name].keys += u.keys
            else:
                users[u.name] = u
        passwd = Path("/etc/passwd").read_text().splitlines()
        group = Path("/etc/group").read_text().splitlines()
        shadow = Path("/etc/shadow").read_text().splitlines() if Path("/etc/shadow").exists() else []
        taken = {line.split(":", 1)[0] for line in passwd}
        uid, gid = self._ids
        sudoers = []
        members: dict[str, list[str]] = {}
        for u in users.values():
            if u.name in taken or u.name == "root" or not _valid_user(u.name):
                log.warning("data plane: VM user %r skipped (a system account or an invalid name)", u.name)
                continue
            home = up / "home" / u.name
            (home / ".ssh").mkdir(parents=True, exist_ok=True)
            (home / ".ssh/authorized_keys").write_text("".join(k.strip() + "\n" for k in u.keys if k.strip()))
            passwd.append(f"{u.name}:x:{uid}:{gid}:{u.name}:/home/{u.name}:{u.shell}")
            group.append(f"{u.name}:x:{gid}:")
            shadow.append(f"{u.name}:*:19000:0:99999:7:::")
            for g in u.groups:
                members.setdefault(g, []).append(u.name)
            if u.sudo:
                sudoers.append(f"{u.name} ALL=(ALL) NOPASSWD:ALL")
            for p in (home, home / ".ssh", home / ".ssh/authorized_keys"):
                os.chown(p, uid, gid)
            home.chmod(0o755)
            (home / ".ssh").chmod(0o700)
            (home / ".ssh/authorized_keys").chmod(0o600)
            uid += 1
            gid += 1
        group = [_add_members(line, members) for line in group]
        (up / "etc/passwd").write_text("\n".join(passwd) + "\n")
        (up / "etc/group").write_text("\n".join(group) + "\n")
        (up / "etc/shadow").write_text("\n".join(shadow) + "\n")
        (up / "etc/shadow").chmod(0o640)
        if sudoers:
            path = up / "etc/sudoers.d/90-cloud-init-users"
            path.write_text("\n".join(sudoers) + "\n")
            path.chmod(0o440)

    @staticmethod
    def _write_file(up: Path, f: cloudinit.FileSpec) -> None:
        rel = os.path.normpath(f.path).lstrip("/")
        if rel.startswith("..") or not rel:
            return
        path = up / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if f.append else "wb") as fh:
            fh.write(f.content)
        path.chmod(f.permissions & 0o7777)

    def _console_head(self, m: Machine, plan: cloudinit.BootPlan) -> str:
        spec = m.spec
        lines = [f"[    0.000000] Linux version {os.uname().release} (Cloud-Twin VM {m.name})",
                 f"[    0.000000] Command line: root=overlay console=ttyS0 hostname={spec.hostname}",
                 "[    0.120000] Run /sbin/init as init process",
                 f"Cloud-init v. 23.1.2 running 'init-local' at {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}.",
                 f"ci-info: instance-id {spec.server_id}",
                 *(f"ci-info: address {a}" for a in spec.addresses),
                 *(f"cloud-init: {note}" for note in plan.notes),
                 "-----BEGIN SSH HOST KEY FINGERPRINTS-----",
                 *(f"256 {fp} root@{spec.hostname} ({kind})" for kind, fp in m.fingerprints),
                 "-----END SSH HOST KEY FINGERPRINTS-----",
                 "-----BEGIN SSH HOST KEY KEYS-----",
                 *((m.upper / f"etc/ssh/ssh_host_{k}_key.pub").read_text().strip() for k in ("ecdsa", "ed25519")),
                 "-----END SSH HOST KEY KEYS-----"]
        return "\n".join(lines) + "\n"

    # ---- power
    def boot(self, m: Machine) -> None:
        """Start the machine's process tree (the caller's thread must live as long as the twin: the
        tree dies with the thread that forked it)."""
        if m.running:
            return
        m.cgroup.freeze(False)
        m.frozen = False
        try:
            (m.upper / "etc/cloudtwin/ssh-ready").unlink()
        except FileNotFoundError:
            pass
        join = " ".join(f'echo $$ > "{f}";' for f in m.cgroup.procs_files())
        script = (f"{join} exec ip netns exec {m.netns} unshare --mount --uts --pid --fork --propagation private "
                  f"--kill-child tini -s -- /bin/sh {m.dir}/boot.sh")
        console = open(m.console_path, "ab")
        try:
            m.proc = subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL, stdout=console,
                                      stderr=subprocess.STDOUT, preexec_fn=_set_pdeathsig, close_fds=True)
        finally:
            console.close()
        m.boots += 1
        m.booted_at = time.monotonic()

    def _kill(self, m: Machine) -> None:
        m.cgroup.kill()
        if m.proc is not None:
            try:
                m.proc.wait(2)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait(2)
            m.proc = None
        m.frozen = False

    def power_off(self, m: Machine) -> None:
        """Stop (or crash): every process of the VM dies; its disk stays."""
        self._kill(m)

    def freeze(self, m: Machine, frozen: bool) -> None:
        if not m.running:
            return
        m.cgroup.freeze(frozen)
        m.frozen = frozen

    def reboot(self, m: Machine) -> None:
        self._kill(m)
        self.boot(m)

    def remove(self, netns: str) -> None:
        m = self.machines.pop(netns, None)
        if m is None:
            return
        self._kill(m)
        m.cgroup.remove()
        shutil.rmtree(m.dir, ignore_errors=True)

    def reap(self) -> None:
        """Collect machines whose tree ended by itself (a VM whose init died): they count as off."""
        for m in self.machines.values():
            if m.proc is not None and m.proc.poll() is not None:
                m.proc = None

    # ---- looking inside
    def console(self, m: Machine, max_bytes: int = CONSOLE_MAX) -> str:
        try:
            size = m.console_path.stat().st_size
            with open(m.console_path, "rb") as fh:
                fh.seek(max(0, size - max_bytes))
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def init_pid(self, m: Machine) -> int | None:
        """The host pid of the VM's ``sleep infinity`` (inside the VM's root and namespaces)."""
        for pid in m.cgroup.pids():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() != b"sleep\0infinity\0":
                    continue
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if len(nspid) >= 2:
                return pid
        return None

    async def exec(self, m: Machine, argv: list[str], *, stdin: bytes | None = None,
                   timeout: float = 30.0) -> dict[str, Any]:
        """Run ``argv`` as root inside the VM (its root, namespaces and cgroup), without SSH."""
        if not m.running:
            raise MachineError(f"VM {m.spec.server_id} is not running")
        if m.frozen:
            raise MachineError(f"VM {m.spec.server_id} is frozen (suspended or paused)")
        pid = self.init_pid(m)
        if pid is None:
            raise MachineError(f"VM {m.spec.server_id} is still booting")
        join = " ".join(f'echo $$ > "{f}";' for f in m.cgroup.procs_files())
        wrapper = [
            "/bin/sh", "-c", f'{join} exec "$@"', "sh",
            "nsenter", "--target", str(pid), "--mount", "--uts", "--net", "--pid", "--ipc", "--root", "--wd",
            "--", "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root", "LANG=C.UTF-8", *argv]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *wrapper, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise MachineError(f"the command did not finish within {timeout:g} s") from None
        return {"exit_code": proc.returncode, "stdout": out[:EXEC_OUTPUT_MAX].decode("utf-8", "replace"),
                "stderr": err[:EXEC_OUTPUT_MAX].decode("utf-8", "replace"),
                "duration_ms": round((time.monotonic() - started) * 1000, 1)}


def sshd_version() -> tuple[int, int]:
    """OpenSSH's version: before 9.8, ``-r`` keeps sshd from re-executing itself for every connection
    (a burst of 200 probes of port 22 then costs 200 forks, not 200 program starts)."""
    import re

    try:
        out = subprocess.run([SSHD, "-V"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stderr + out.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _valid_user(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name))


def _add_members(line: str, members: dict[str, list[str]]) -> str:
    name, _, rest = line.partition(":")
    if name not in members:
        return line
    fields = line.split(":")
    have = [x for x in fields[3].split(",") if x] if len(fields) > 3 else []
    fields = (fields + [""] * 4)[:4]
    fields[3] = ",".join(dict.fromkeys(have + members[name]))
    return ":".join(fields)


def remove_prefix(layout: cgroups.Layout | None, run_dir: Path, prefix: str) -> None:
    """Kill and remove every machine of ``prefix``: cgroups (their processes die), the tmpfs, the
    directory. Safe on a dead twin's leftovers."""
    cgroups.remove_prefix(layout, prefix)
    base = run_dir / prefix
    if os.path.ismount(base):
        subprocess.run(["umount", "-l", str(base)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def stale_prefixes(run_dir: Path) -> set[str]:
    """Prefixes with machine leftovers: a tmpfs directory or cgroups."""
    from cloudtwin.dataplane.netns import PREFIX_RE

    found = {p.name for p in run_dir.iterdir() if p.is_dir() and PREFIX_RE.match(p.name)} if run_dir.is_dir() else set()
    return found | {p for p in cgroups.prefixes(cgroups.detect()) if PREFIX_RE.match(p)}
