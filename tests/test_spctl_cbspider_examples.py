"""CB-Spider's spctl examples, replayed line for line with bash against a running ``spider serve``.

The lines are CB-Spider's (``interface/cli-examples/*.sh``, ``examples.spctl`` and the MOCK connection
script of its CLI tests, the grammar its CLI guide documents): ``$CLIPATH/spctl --config
$CLIPATH/spctl.conf <resource> <verb> -i json -d '...'``, ``--cname``, ``-n``, ``--vname/--sname``,
``-o json``, CB-Spider's verbs. ``$CLIPATH`` holds an ``spctl`` that runs ours and an ``spctl.conf`` in
CB-Spider's layout naming this test's server. Each line must exit 0 and its answer must show the effect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ENV = {"CONN_CONFIG": "mock-config01", "PREFIX": "cbex", "VPC_NAME": "cbex-vpc-01", "VPC_CIDR": "192.168.0.0/16",
       "SUBNET_NAME": "cbex-subnet-01", "SUBNET_CIDR": "192.168.1.0/24", "SG_NAME": "cbex-sg-01",
       "KEYPAIR_NAME": "cbex-keypair-01", "VM_NAME": "cbex-vm-01-1", "IMAGE_NAME": "mock-vmimage-01",
       "SPEC_NAME": "mock-vmspec-01", "IPv4_CIDR_SUBNET2": "192.168.2.0/24"}
SP = "$CLIPATH/spctl --config $CLIPATH/spctl.conf"

CONNECTION = [  # the MOCK connection, as CB-Spider's CLI test registers it
    f"""{SP} driver create -i json -d '{{"DriverName":"mock-driver01","ProviderName":"MOCK",
        "DriverLibFileName":"mock-driver-v1.0.so"}}'""",
    f"""{SP} credential create -i json -d '{{"CredentialName":"mock-credential01","ProviderName":"MOCK",
        "KeyValueInfoList": [{{"Key":"MockName", "Value":"cbex_mock_name"}}]}}'""",
    f"""{SP} region create -i json -d '{{"RegionName":"mock-region01","ProviderName":"MOCK",
        "KeyValueInfoList": [{{"Key":"Region", "Value":"default"}}]}}'""",
    f"""{SP} connection create -i json -d '{{"ConfigName":"mock-config01","ProviderName":"MOCK",
        "DriverName":"mock-driver01","CredentialName":"mock-credential01","RegionName":"mock-region01"}}'""",
]

PREPARE = [  # 1.prepare-resources.sh
    f"""{SP} vpc create -i json -d '{{"ConnectionName":"'${{CONN_CONFIG}}'","ReqInfo": {{"Name": "'${{VPC_NAME}}'",
        "IPv4_CIDR": "'${{VPC_CIDR}}'", "SubnetInfoList": [{{"Name": "'${{SUBNET_NAME}}'",
        "IPv4_CIDR": "'${{SUBNET_CIDR}}'"}}]}}}}'""",
    f"""{SP} security create -i json -d '{{"ConnectionName":"'${{CONN_CONFIG}}'","ReqInfo": {{
        "Name": "'${{SG_NAME}}'", "VPCName": "'${{VPC_NAME}}'", "SecurityRules": [{{"FromPort": "1",
        "ToPort" : "65535", "IPProtocol" : "tcp", "Direction" : "inbound"}}]}}}}'""",
    f"""{SP} keypair create -i json -d '{{"ConnectionName":"'${{CONN_CONFIG}}'",
        "ReqInfo": {{"Name": "'${{KEYPAIR_NAME}}'"}}}}'""",
]

GET = [  # 2.get-resources.sh
    f'{SP} keypair get --cname "${{CONN_CONFIG}}" -n "${{KEYPAIR_NAME}}"',
    f'{SP} security get --cname "${{CONN_CONFIG}}" -n "${{SG_NAME}}"',
    f'{SP} vpc get --cname "${{CONN_CONFIG}}" -n "${{VPC_NAME}}"',
]

VM_START = (  # 3.vm-start.sh
    f'''{SP} vm start -i json -d "{{\\"ConnectionName\\":\\"${{CONN_CONFIG}}\\", \\"ReqInfo\\": {{
        \\"Name\\": \\"${{VM_NAME}}\\", \\"ImageName\\": \\"${{IMAGE_NAME}}\\", \\"VPCName\\": \\"${{VPC_NAME}}\\",
        \\"SubnetName\\": \\"${{SUBNET_NAME}}\\", \\"SecurityGroupNames\\": [ \\"${{SG_NAME}}\\" ],
        \\"VMSpecName\\": \\"${{SPEC_NAME}}\\", \\"KeyPairName\\": \\"${{KEYPAIR_NAME}}\\"}}}}"''')


def _spctl_dir(tmp_path: Path, port: int) -> Path:
    clipath = tmp_path / "interface"
    clipath.mkdir()
    (clipath / "spctl").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m spider_core.spctl "$@"\n')
    (clipath / "spctl").chmod(0o755)
    # CB-Spider's spctl.conf layout, naming this test's server
    (clipath / "spctl.conf").write_text(f"version: 1\ngrpc:\n  spidercli:\n    server_addr: 127.0.0.1:{port}\n"
                                        "    timeout: 600s\n")
    return clipath


@pytest.fixture
def sh(spider_process, tmp_path):
    server = spider_process()
    clipath = _spctl_dir(tmp_path, server.port)
    env = {k: v for k, v in os.environ.items() if k not in ("SPIDER_USERNAME", "SPIDER_PASSWORD", "SPCTL_CONFIG")}
    env.update(ENV, CLIPATH=str(clipath), PYTHONPATH=str(Path(__file__).resolve().parents[1]))

    def run(line: str, stdin: str | None = None, ok: bool = True) -> str:
        done = subprocess.run(["bash", "-c", line], env=env, input=stdin, capture_output=True, text=True,
                              timeout=120)
        if ok:
            assert done.returncode == 0, f"{line}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run.clipath = clipath  # type: ignore[attr-defined]
    return run


def _json(text: str) -> dict:
    return json.loads(text)


def test_cbspider_cli_examples_replayed(sh):
    for line in CONNECTION:
        sh(line)
    conns = _json(sh(f"{SP} connection list"))["connectionconfig"]
    assert [c["ConfigName"] for c in conns] == ["mock-config01"]

    for line in PREPARE:
        sh(line)
    key, sg, vpc = (_json(sh(line)) for line in GET)
    assert key["IId"]["NameId"] == ENV["KEYPAIR_NAME"]
    assert sg["IId"]["NameId"] == ENV["SG_NAME"] and sg["SecurityRules"]
    assert [s["IId"]["NameId"] for s in vpc["SubnetInfoList"]] == [ENV["SUBNET_NAME"]]

    vm = _json(sh(VM_START))
    assert vm["IId"]["NameId"] == ENV["VM_NAME"]
    # 4.vm-list.sh, 5.vm-listall.sh, 6.vm-get.sh: --cname before the command, as the examples put it
    assert [v["IId"]["NameId"] for v in _json(sh(f'{SP} --cname "${{CONN_CONFIG}}" vm list'))["vm"]] == \
        [ENV["VM_NAME"]]
    listall = _json(sh(f'{SP} --cname "${{CONN_CONFIG}}" vm listall'))
    assert [v["NameId"] for v in listall["AllList"]["MappedList"]] == [ENV["VM_NAME"]]
    assert _json(sh(f'{SP} --cname "${{CONN_CONFIG}}" vm get -n "${{VM_NAME}}"'))["IId"]["NameId"] == ENV["VM_NAME"]
    # control and status (CB-Spider's CLI tests)
    for verb, status in (("suspend", "Suspending"), ("resume", "Resuming"), ("reboot", "Rebooting")):
        assert _json(sh(f'{SP} vm {verb} --cname "${{CONN_CONFIG}}" -n "${{VM_NAME}}"'))["Status"] == status
    statuses = _json(sh(f'{SP} vm liststatus --cname "${{CONN_CONFIG}}"'))["vmstatus"]
    assert [s["IId"]["NameId"] for s in statuses] == [ENV["VM_NAME"]]
    assert "Status" in _json(sh(f'{SP} vm getstatus --cname "${{CONN_CONFIG}}" -n "${{VM_NAME}}"'))
    # add/remove a subnet: VPCName inside the body, --vname/--sname flags
    sh(f"""{SP} vpc add-subnet -i json -d '{{"ConnectionName":"'${{CONN_CONFIG}}'", "VPCName": "'${{VPC_NAME}}'",
        "ReqInfo": {{"Name": "subnet-02", "IPv4_CIDR": "'${{IPv4_CIDR_SUBNET2}}'"}}}}'""")
    got = _json(sh(f'{SP} vpc get -o json --cname "${{CONN_CONFIG}}" -n "${{VPC_NAME}}"'))
    assert {s["IId"]["NameId"] for s in got["SubnetInfoList"]} == {ENV["SUBNET_NAME"], "subnet-02"}

    # 7.vm-terminate.sh, 8.clear-resources.sh
    sh(f'{SP} --cname "${{CONN_CONFIG}}" vm terminate -n "${{VM_NAME}}"')
    sh(f'{SP} vpc remove-subnet --cname "${{CONN_CONFIG}}" --vname "${{VPC_NAME}}" --sname subnet-02 --force false')
    sh(f'{SP} keypair delete --cname "${{CONN_CONFIG}}" -n "${{KEYPAIR_NAME}}"')
    sh(f'{SP} security delete --cname "${{CONN_CONFIG}}" -n "${{SG_NAME}}"')
    sh(f'{SP} vpc delete --cname "${{CONN_CONFIG}}" -n "${{VPC_NAME}}" --force false')
    for res in ("vpc", "security", "keypair", "vm"):
        listed = _json(sh(f'{SP} --cname "${{CONN_CONFIG}}" {res} list'))
        assert list(listed.values()) == [[]], (res, listed)


def test_yaml_in_and_out_stdin_and_files(sh):
    for line in CONNECTION:
        sh(line)
    body = ("ConnectionName: mock-config01\nReqInfo:\n  Name: yvpc\n  IPv4_CIDR: 10.9.0.0/16\n"
            "  SubnetInfoList:\n  - Name: ys1\n    IPv4_CIDR: 10.9.1.0/24\n")
    out = yaml.safe_load(sh(f"{SP} vpc create -i yaml -o yaml -d -", stdin=body))  # the body from stdin
    assert out["IId"]["NameId"] == "yvpc" and out["SubnetInfoList"][0]["IPv4_CIDR"] == "10.9.1.0/24"
    key_file = sh.clipath / "key.json"  # type: ignore[attr-defined]
    key_file.write_text('{"ConnectionName": "mock-config01", "ReqInfo": {"Name": "fkey"}}')
    assert _json(sh(f"{SP} keypair create -f {key_file}"))["IId"]["NameId"] == "fkey"
    assert yaml.safe_load(sh(f"{SP} keypair get --cname mock-config01 -n fkey -o yaml"))["IId"]["NameId"] == "fkey"
    # spidertwin's own config layout, from the environment
    ours = sh.clipath / "ours.yaml"  # type: ignore[attr-defined]
    port = yaml.safe_load((sh.clipath / "spctl.conf").read_text())["grpc"]["spidercli"]["server_addr"]  # type: ignore[attr-defined]
    ours.write_text(f"spctl:\n  server: http://{port}\n  timeout: 30\n")
    assert _json(sh(f"SPCTL_CONFIG={ours} $CLIPATH/spctl vpc list --cname mock-config01"))["vpc"][0]["IId"]["NameId"] \
        == "yvpc"


def test_bad_formats_and_config_files_are_clear_errors(sh):
    done = sh(f"{SP} vpc list --cname c -i xml 2>&1", ok=False)
    assert "invalid choice: 'xml'" in done
    out = sh(f"{SP} vpc create -i json -d 'Name: [1' ; echo rc=$?", ok=False)
    assert "invalid -d/--data" in out and out.rstrip().endswith("rc=1")
    out = sh("$CLIPATH/spctl --config /nonexistent.conf vpc list --cname c; echo rc=$?", ok=False)
    assert "cannot read config file /nonexistent.conf" in out and out.rstrip().endswith("rc=2")
    bad = sh.clipath / "bad.conf"  # type: ignore[attr-defined]
    bad.write_text("spctl:\n  server: localhost:1\n  timeout: soon\n")
    out = sh(f"$CLIPATH/spctl --config {bad} vpc list --cname c; echo rc=$?", ok=False)
    assert "timeout 'soon' is not a duration" in out and out.rstrip().endswith("rc=2")
