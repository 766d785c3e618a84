"""Keystone v3's routes: version discovery, then one module per resource (``auth``, ``catalog``,
``domains``, ``projects``, ``users``, ``groups``, ``roles``, ``app_credentials``, ``credentials``).

A Keystone domain is one virtual cloud; the documented default login for every cloud is user
``admin``, password ``admin``, project ``admin`` (a profile may set others). With ``auto_projects`` (the
default) a profile user's login to an unknown project name creates it, which is how CB-Spider's
CLOUDTWIN ``MockName`` becomes an isolated tenant. Who may call what is ``cloudtwin.policy``'s
business (``data/policy.yaml``), matched by each route's operation name.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.routing import Call, Router
from cloudtwin.services.keystone import (app_credentials, auth, catalog, credentials, domain_config, domains,
                                         groups, projects, records, roles, trusts, users)


def version_doc(call: Call) -> dict[str, Any]:
    base = call.request.app["public_url"] or f"{call.request.scheme}://{call.request.host}"
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}


async def versions(call: Call) -> web.Response:
    return wire.json_response(300, {"versions": {"values": [version_doc(call)]}})


async def version(call: Call) -> web.Response:
    return wire.json_response(200, {"version": version_doc(call)})


GRANT_TARGETS = (("projects/{pid}", "project"), ("domains/{did}", "domain"), ("system", "system"))
GRANT_ACTORS = (("users/{uid}", "user"), ("groups/{gid}", "group"))


def _grant_routes(r: Router) -> None:
    for target, tname in GRANT_TARGETS:
        for actor, aname in GRANT_ACTORS:
            base = f"/v3/{target}/{actor}/roles"
            op = f"identity:{tname}_{aname}_grant"
            r.add("identity", "GET", base, roles.list_grants, f"{op}:list")
            r.add("identity", "PUT", base + "/{rid}", roles.put_grant, f"{op}:create")
            r.add("identity", "GET", base + "/{rid}", roles.check_grant, f"{op}:check")
            r.add("identity", "DELETE", base + "/{rid}", roles.delete_grant, f"{op}:delete")
    for target, tname in GRANT_TARGETS[:2]:
        for actor, aname in GRANT_ACTORS:
            base = f"/v3/OS-INHERIT/{target}/{actor}/roles"
            op = f"identity:{tname}_{aname}_inherited_grant"
            r.add("identity", "GET", base + "/inherited_to_projects", roles.list_grants, f"{op}:list")
            r.add("identity", "PUT", base + "/{rid}/inherited_to_projects", roles.put_grant, f"{op}:create")
            r.add("identity", "GET", base + "/{rid}/inherited_to_projects", roles.check_grant, f"{op}:check")
            r.add("identity", "DELETE", base + "/{rid}/inherited_to_projects", roles.delete_grant, f"{op}:delete")


def _crud(r: Router, path: str, kind: str, handlers: tuple[Any, Any, Any, Any, Any], key: str = "id") -> None:
    listing, create, get, update, delete = handlers
    r.add("identity", "GET", f"/v3/{path}", listing, f"identity:{kind}:list")
    r.add("identity", "POST", f"/v3/{path}", create, f"identity:{kind}:create")
    r.add("identity", "GET", f"/v3/{path}/{{{key}}}", get, f"identity:{kind}:get")
    r.add("identity", "PATCH", f"/v3/{path}/{{{key}}}", update, f"identity:{kind}:update")
    r.add("identity", "DELETE", f"/v3/{path}/{{{key}}}", delete, f"identity:{kind}:delete")


def add_routes(r: Router) -> None:
    s = "identity"
    r.add(s, "GET", "/", versions, "identity:version:list", auth=False)
    r.add(s, "GET", "/v3", version, "identity:version:get", auth=False)
    # auth
    r.add(s, "POST", "/v3/auth/tokens", auth.issue, "identity:token:create", auth=False)
    r.add(s, "HEAD", "/v3/auth/tokens", auth.check, "identity:token:check")
    r.add(s, "GET", "/v3/auth/tokens", auth.validate, "identity:token:get")
    r.add(s, "DELETE", "/v3/auth/tokens", auth.revoke, "identity:token:delete")
    r.add(s, "GET", "/v3/auth/catalog", auth.auth_catalog, "identity:auth_catalog:get")
    r.add(s, "GET", "/v3/auth/projects", auth.auth_projects, "identity:auth_projects:list")
    r.add(s, "GET", "/v3/auth/domains", auth.auth_domains, "identity:auth_domains:list")
    r.add(s, "GET", "/v3/auth/system", auth.auth_system, "identity:auth_system:get")
    # catalog
    _crud(r, "services", "service", (catalog.list_services, catalog.create_service, catalog.get_service,
                                     catalog.update_service, catalog.delete_service))
    _crud(r, "endpoints", "endpoint", (catalog.list_endpoints, catalog.create_endpoint, catalog.get_endpoint,
                                       catalog.update_endpoint, catalog.delete_endpoint))
    _crud(r, "regions", "region", (catalog.list_regions, catalog.create_region, catalog.get_region,
                                   catalog.update_region, catalog.delete_region))
    r.add(s, "PUT", "/v3/regions/{id}", catalog.create_region, "identity:region:create")
    # domains and projects
    domain_config.add_routes(r)     # before /v3/domains/{id}: /v3/domains/config/default is not a domain
    _crud(r, "domains", "domain", (domains.list_domains, domains.create_domain, domains.get_domain,
                                   domains.update_domain, domains.delete_domain))
    _crud(r, "projects", "project", (projects.list_projects, projects.create_project, projects.get_project,
                                     projects.update_project, projects.delete_project))
    r.add(s, "GET", "/v3/projects/{id}/tags", projects.list_tags, "identity:project_tag:list")
    r.add(s, "PUT", "/v3/projects/{id}/tags", projects.replace_tags, "identity:project_tag:update")
    r.add(s, "DELETE", "/v3/projects/{id}/tags", projects.clear_tags, "identity:project_tag:delete")
    r.add(s, "GET", "/v3/projects/{id}/tags/{tag}", projects.check_tag, "identity:project_tag:get")
    r.add(s, "PUT", "/v3/projects/{id}/tags/{tag}", projects.add_tag, "identity:project_tag:create")
    r.add(s, "DELETE", "/v3/projects/{id}/tags/{tag}", projects.delete_tag, "identity:project_tag:delete")
    # users and groups
    _crud(r, "users", "user", (users.list_users, users.create_user, users.get_user, users.update_user,
                               users.delete_user), key="uid")
    r.add(s, "POST", "/v3/users/{uid}/password", users.change_password, "identity:user:change_password")
    r.add(s, "GET", "/v3/users/{uid}/projects", users.list_user_projects, "identity:user_projects:list")
    r.add(s, "GET", "/v3/users/{uid}/groups", users.list_user_groups, "identity:user_groups:list")
    _crud(r, "groups", "group", (groups.list_groups, groups.create_group, groups.get_group, groups.update_group,
                                 groups.delete_group), key="gid")
    r.add(s, "GET", "/v3/groups/{gid}/users", groups.list_members, "identity:group_users:list")
    r.add(s, "PUT", "/v3/groups/{gid}/users/{uid}", groups.add_member, "identity:group_user:create")
    r.add(s, "GET", "/v3/groups/{gid}/users/{uid}", groups.check_member, "identity:group_user:check")
    r.add(s, "DELETE", "/v3/groups/{gid}/users/{uid}", groups.remove_member, "identity:group_user:delete")
    # roles and assignments
    _crud(r, "roles", "role", (roles.list_roles, roles.create_role, roles.get_role, roles.update_role,
                               roles.delete_role), key="rid")
    r.add(s, "GET", "/v3/roles/{prior}/implies", roles.list_implied, "identity:implied_role:list")
    r.add(s, "PUT", "/v3/roles/{prior}/implies/{implied}", roles.add_implied, "identity:implied_role:create")
    r.add(s, "GET", "/v3/roles/{prior}/implies/{implied}", roles.get_implied, "identity:implied_role:get")
    r.add(s, "DELETE", "/v3/roles/{prior}/implies/{implied}", roles.delete_implied, "identity:implied_role:delete")
    r.add(s, "GET", "/v3/role_inferences", roles.list_inferences, "identity:implied_role:list_all")
    r.add(s, "GET", "/v3/role_assignments", roles.list_assignments, "identity:role_assignment:list")
    _grant_routes(r)
    # application credentials, access rules, credentials
    base = "/v3/users/{uid}/application_credentials"
    r.add(s, "GET", base, app_credentials.list_all, "identity:application_credential:list")
    r.add(s, "POST", base, app_credentials.create, "identity:application_credential:create")
    r.add(s, "GET", base + "/{cid}", app_credentials.get, "identity:application_credential:get")
    r.add(s, "DELETE", base + "/{cid}", app_credentials.delete, "identity:application_credential:delete")
    r.add(s, "GET", "/v3/users/{uid}/access_rules", app_credentials.list_rules, "identity:access_rule:list")
    r.add(s, "GET", "/v3/users/{uid}/access_rules/{rid}", app_credentials.get_rule, "identity:access_rule:get")
    r.add(s, "DELETE", "/v3/users/{uid}/access_rules/{rid}", app_credentials.delete_rule,
          "identity:access_rule:delete")
    _crud(r, "credentials", "credential", (credentials.list_credentials, credentials.create_credential,
                                           credentials.get_credential, credentials.update_credential,
                                           credentials.delete_credential))
    records.add_routes(r)
    trusts.add_routes(r)
    ec2 = "/v3/users/{uid}/credentials/OS-EC2"
    r.add(s, "GET", ec2, credentials.list_ec2, "identity:ec2_credential:list")
    r.add(s, "POST", ec2, credentials.create_ec2, "identity:ec2_credential:create")
    r.add(s, "GET", ec2 + "/{access}", credentials.get_ec2, "identity:ec2_credential:get")
    r.add(s, "DELETE", ec2 + "/{access}", credentials.delete_ec2, "identity:ec2_credential:delete")
