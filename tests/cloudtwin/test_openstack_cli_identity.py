"""The unmodified ``openstack`` CLI drives Keystone on Cloud-Twin through the everyday commands of its
identity chapter: domains, projects, users, groups, roles and assignments, application credentials,
tokens, the catalog, services, endpoints and regions. Each step is checked against what the CLI prints,
and the new users log in with what the CLI gave them. The commands run through the CLI's own entry
point in this process (``OpenStackCli(in_process=True)``): dozens of commands would otherwise pay the
CLI's import each."""

from __future__ import annotations

from twin_helpers import OpenStackCli

CLOUD = "cli-id"


def test_openstack_cli_identity_chapter(threaded_twin):
    cli = OpenStackCli(threaded_twin.url, CLOUD, "admin", in_process=True)

    # domains
    dom = cli.json("domain", "create", "--description", "lab domain", "cli-lab")
    assert dom["name"] == "cli-lab" and dom["enabled"] is True
    assert {"cli-lab", CLOUD} <= {d["Name"] for d in cli.json("domain", "list")}
    cli.run("domain", "set", "--description", "renamed lab", "cli-lab")
    assert cli.json("domain", "show", "cli-lab")["description"] == "renamed lab"

    # projects
    proj = cli.json("project", "create", "--domain", CLOUD, "--description", "web tier", "--tag", "web", "cli-web")
    assert proj["name"] == "cli-web" and proj["domain_id"] == threaded_twin.twin.clouds[CLOUD].domain_id
    cli.run("project", "set", "--description", "web tier v2", "--tag", "blue", "cli-web")
    shown = cli.json("project", "show", "cli-web")
    assert shown["description"] == "web tier v2" and sorted(shown["tags"]) == ["blue", "web"]
    assert {"admin", "cli-web"} <= {p["Name"] for p in cli.json("project", "list")}

    # users
    user = cli.json("user", "create", "--domain", CLOUD, "--password", "s3cret", "--email", "ann@example.org",
                    "--project", "cli-web", "ann")
    assert user["name"] == "ann" and user["email"] == "ann@example.org"
    cli.run("user", "set", "--email", "ann@example.com", "ann")
    assert cli.json("user", "show", "ann")["email"] == "ann@example.com"
    assert "ann" in [u["Name"] for u in cli.json("user", "list")]

    # roles and assignments
    role = cli.json("role", "create", "cli-auditor")
    assert role["name"] == "cli-auditor"
    assert {"admin", "member", "reader", "cli-auditor"} <= {r["Name"] for r in cli.json("role", "list")}
    assert cli.json("role", "show", "member")["name"] == "member"
    cli.run("role", "add", "--project", "cli-web", "--user", "ann", "member")
    rows = cli.json("role", "assignment", "list", "--user", "ann", "--project", "cli-web", "--names")
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [("member", f"ann@{CLOUD}", f"cli-web@{CLOUD}")]

    # the new user logs in and works in its project with what the CLI made
    ann = OpenStackCli(threaded_twin.url, CLOUD, "cli-web", user="ann", password="s3cret", in_process=True)
    token = ann.json("token", "issue")
    assert token["project_id"] == proj["id"] and token["user_id"] == user["id"]
    assert ann.json("network", "create", "ann-net")["project_id"] == proj["id"]
    assert ann.run("user", "list", check=False).returncode != 0, "a member may not list users"

    # groups
    group = cli.json("group", "create", "--domain", CLOUD, "--description", "ops", "cli-ops")
    cli.run("group", "add", "user", "cli-ops", "ann")
    assert cli.run("group", "contains", "user", "cli-ops", "ann").stdout.strip() == "ann in group cli-ops"
    assert [g["Name"] for g in cli.json("group", "list", "--user", "ann")] == ["cli-ops"]
    assert cli.json("group", "show", "cli-ops")["id"] == group["id"]
    cli.run("role", "add", "--project", "cli-web", "--group", "cli-ops", "cli-auditor")
    effective = cli.json("role", "assignment", "list", "--user", "ann", "--effective", "--names")
    assert {r["Role"] for r in effective} >= {"member", "reader", "cli-auditor"}
    cli.run("group", "remove", "user", "cli-ops", "ann")
    assert cli.json("group", "list", "--user", "ann") == []

    # application credentials: made by the user, then used to log in
    cred = ann.json("application", "credential", "create", "--role", "member", "ann-ci")
    assert cred["Name"] == "ann-ci" and cred["Secret"] and cred["Project ID"] == proj["id"]
    assert [r["name"] for r in cred["Roles"]] == ["member"]
    assert [c["Name"] for c in ann.json("application", "credential", "list")] == ["ann-ci"]
    assert ann.json("application", "credential", "show", "ann-ci")["ID"] == cred["ID"]
    app = OpenStackCli(threaded_twin.url, CLOUD, "cli-web", in_process=True)
    for key in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME"):
        app.env.pop(key)
    app.env.update({"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID": cred["ID"],
                    "OS_APPLICATION_CREDENTIAL_SECRET": cred["Secret"]})
    assert app.json("token", "issue")["project_id"] == proj["id"]
    ann.run("application", "credential", "delete", "ann-ci")
    assert app.run("token", "issue", check=False).returncode != 0, "a deleted credential no longer logs in"

    # tokens: issue, then revoke: the revoked token is refused
    issued = cli.json("token", "issue")
    cli.run("token", "revoke", issued["id"])
    revoked = OpenStackCli(threaded_twin.url, CLOUD, "admin", in_process=True)
    for key in ("OS_USERNAME", "OS_PASSWORD", "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_NAME"):
        revoked.env.pop(key)
    revoked.env.update({"OS_AUTH_TYPE": "token", "OS_TOKEN": issued["id"], "OS_PROJECT_ID": proj["id"]})
    assert revoked.run("project", "list", check=False).returncode != 0

    # catalog, services, endpoints, regions
    catalog = {c["Type"]: c for c in cli.json("catalog", "list")}
    assert {"compute", "network", "image", "block-storage", "identity"} <= set(catalog)
    assert cli.json("catalog", "show", "compute")["type"] == "compute"
    services = {s["Type"]: s for s in cli.json("service", "list")}
    assert services["network"]["Name"] == "neutron"
    assert cli.json("service", "show", "neutron")["type"] == "network"
    endpoints = cli.json("endpoint", "list", "--service", "compute", "--interface", "public")
    assert {e["Region"] for e in endpoints} >= {"RegionOne"}
    svc = cli.json("service", "create", "--name", "cli-svc", "--description", "extra", "cli-type")
    ep = cli.json("endpoint", "create", "--region", "RegionOne", svc["id"], "public", "http://127.0.0.1:9/cli")
    assert ep["url"] == "http://127.0.0.1:9/cli"
    cli.run("endpoint", "delete", ep["id"])
    cli.run("service", "delete", svc["id"])
    assert "cli-type" not in {s["Type"] for s in cli.json("service", "list")}
    assert "RegionOne" in [r["Region"] for r in cli.json("region", "list")]

    # clean up, in the order Keystone requires
    cli.run("role", "remove", "--project", "cli-web", "--user", "ann", "member")
    assert cli.json("role", "assignment", "list", "--user", "ann", "--project", "cli-web") == []
    cli.run("user", "delete", "ann")
    cli.run("group", "delete", "cli-ops")
    cli.run("role", "delete", "cli-auditor")
    cli.run("project", "delete", "cli-web")
    assert cli.run("domain", "delete", "cli-lab", check=False).returncode != 0, "an enabled domain stays"
    cli.run("domain", "set", "--disable", "cli-lab")
    cli.run("domain", "delete", "cli-lab")
    assert "cli-lab" not in {d["Name"] for d in cli.json("domain", "list")}
    assert "ann" not in [u["Name"] for u in cli.json("user", "list")]
