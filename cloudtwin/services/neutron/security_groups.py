"""Neutron security groups and rules of one region (a part of ``NeutronState``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.services.neutron.ipam import invalid_attr
from cloudtwin.services.neutron.resources import Port, SecurityGroup, SecurityGroupRule, IP_PROTOCOL_MAP, PORT_PROTOCOLS, ICMP_PROTOCOLS, IPV6_ONLY_PROTOCOLS, ANY_PROTOCOL


class SecurityGroupMethods:
    """Security groups and rules: defaults, de-duplication, remote groups, the listeners the data plane follows."""

    def _create_default_sg(self, project_id: str) -> SecurityGroup:
        sg = self._add_sg(project_id, "default", "Default security group", stateful=True, is_default=True)
        for eth in ("IPv4", "IPv6"):
            self._add_rule(sg, direction="ingress", ethertype=eth, remote_group_id=sg.id)
        for eth in self.profile.default_egress:
            self._add_rule(sg, direction="egress", ethertype=eth)
        self._emit("security_group.create", sg)
        return sg

    def _add_sg(self, project_id: str, name: str, description: str, *, stateful: bool = True,
                is_default: bool = False, tags: list[str] | None = None) -> SecurityGroup:
        sg = SecurityGroup(id=self._new_id(), project_id=project_id, name=name, description=description,
                           stateful=stateful, is_default=is_default, tags=list(tags or []))
        self.security_groups[sg.id] = sg
        self._own("security_groups", sg)
        self._sg_names.setdefault((project_id, name), {})[sg.id] = None
        self._rule_keys[sg.id] = {}
        if is_default:
            self._default_sg[project_id] = sg.id
        return sg

    def default_security_group(self, project_id: str) -> SecurityGroup | None:
        self.ensure_project(project_id)
        sid = self._default_sg.get(project_id)
        return self.security_groups.get(sid) if sid else None

    def add_security_group(self, project_id: str, *, name: str = "", description: str = "",
                           stateful: bool = True, tags: list[str] | None = None) -> SecurityGroup:
        self.ensure_project(project_id)
        if name == "default" and project_id in self._default_sg:
            raise ApiError(409, "Default security group already exists.", code="SecurityGroupDefaultAlreadyExists")
        self._check_quota("security_groups", project_id)
        n_egress = len(self.profile.default_egress)
        self._check_quota("security_group_rules", project_id, n_egress) if n_egress else None
        sg = self._add_sg(project_id, name, description, stateful=stateful, tags=tags)
        for eth in self.profile.default_egress:
            self._add_rule(sg, direction="egress", ethertype=eth)
        self._emit("security_group.create", sg)
        return sg

    def update_security_group(self, project_id: str, sg_id: str, changes: dict[str, Any]) -> SecurityGroup:
        sg = self.get_security_group(project_id, sg_id)
        if sg.is_default and "name" in changes and changes["name"] != "default":
            raise ApiError(409, "Insufficient rights for removing default security group.",
                           code="SecurityGroupCannotUpdateDefault")
        if not sg.is_default and changes.get("name") == "default":
            raise ApiError(409, "Default security group already exists: another group may not be named "
                                "'default'.", code="SecurityGroupDefaultAlreadyExists")
        if "stateful" in changes and changes["stateful"] != sg.stateful and self._sg_ports.get(sg.id):
            raise ApiError(409, f"Security Group {sg.id} in use.", code="SecurityGroupInUse")
        if "name" in changes and changes["name"] != sg.name:
            self._sg_names.get((sg.project_id, sg.name), {}).pop(sg.id, None)
            self._sg_names.setdefault((sg.project_id, changes["name"]), {})[sg.id] = None
        for k, v in changes.items():
            setattr(sg, k, v)
        sg.touch()
        self._emit("security_group.update", sg)
        return sg

    def delete_security_group(self, project_id: str, sg_id: str, *, admin: bool = False) -> None:
        """Only an admin may delete a project's `default` group (Tempest's credential cleanup does); the
        project's next port or listing makes a new one, as Neutron's on-demand default does."""
        sg = self.get_security_group(project_id, sg_id)
        if sg.is_default and not admin:
            raise ApiError(409, "Insufficient rights for removing default security group.",
                           code="SecurityGroupCannotRemoveDefault")
        if self._sg_ports.get(sg.id):
            raise ApiError(409, f"Security Group {sg.id} in use.", code="SecurityGroupInUse")
        for other_rule_sg, rid in self._rules_referencing(sg.id):
            if other_rule_sg != sg.id:
                rule = self.security_group_rules.get(rid)
                if rule is not None:
                    self._drop_rule(rule)
                    self._emit("security_group_rule.delete", rule)
        for rid in list(sg.rules):
            rule = self.security_group_rules.get(rid)
            if rule is not None:
                self._disown("security_group_rules", rule)
                del self.security_group_rules[rid]
                rule.removed = True
        self._sg_ports.pop(sg.id, None)
        self._rule_keys.pop(sg.id, None)
        self._sg_names.get((sg.project_id, sg.name), {}).pop(sg.id, None)
        if self._default_sg.get(sg.project_id) == sg.id:
            del self._default_sg[sg.project_id]
            self._known_projects.discard(sg.project_id)
        self._disown("security_groups", sg)
        del self.security_groups[sg.id]
        sg.removed = True
        self._emit("security_group.delete", sg)

    def _rules_referencing(self, sg_id: str) -> list[tuple[str, str]]:
        """Rules of the same project that name ``sg_id`` as remote group (deleted with it, as Neutron does)."""
        sg = self.security_groups[sg_id]
        out = []
        for other in self.owned("security_groups", sg.project_id):
            for rid in other.rules:
                rule = self.security_group_rules.get(rid)
                if rule is not None and rule.remote_group_id == sg_id:
                    out.append((other.id, rid))
        return out

    # ---- rules -----------------------------------------------------------------------------------

    @staticmethod
    def _proto_num(protocol: str | None, ethertype: str) -> int | None:
        if protocol is None:
            return None
        n = IP_PROTOCOL_MAP.get(protocol)
        if n is None:
            n = int(protocol)
        if ethertype == "IPv6" and n == 1:
            n = 58
        return n

    def _rule_key(self, rule: SecurityGroupRule) -> tuple[Any, ...]:
        return (rule.direction, rule.ethertype, self._proto_num(rule.protocol, rule.ethertype),
                rule.port_range_min, rule.port_range_max, rule.normalized_cidr, rule.remote_group_id,
                rule.remote_address_group_id)

    def _add_rule(self, sg: SecurityGroup, **fields: Any) -> SecurityGroupRule:
        rule = SecurityGroupRule(id=self._new_id(), project_id=sg.project_id, security_group_id=sg.id,
                                 belongs_to_default_sg=sg.is_default, **fields)
        self.security_group_rules[rule.id] = rule
        self._own("security_group_rules", rule)
        sg.rules.append(rule.id)
        self._rule_keys.setdefault(sg.id, {})[self._rule_key(rule)] = rule.id
        return rule

    def _drop_rule(self, rule: SecurityGroupRule) -> None:
        sg = self.security_groups.get(rule.security_group_id)
        if sg is not None:
            if rule.id in sg.rules:
                sg.rules.remove(rule.id)
            keys = self._rule_keys.get(sg.id, {})
            key = self._rule_key(rule)
            if keys.get(key) == rule.id:
                del keys[key]
            sg.touch()
        self._disown("security_group_rules", rule)
        self.security_group_rules.pop(rule.id, None)
        rule.removed = True

    def add_security_group_rule(self, project_id: str, security_group_id: str, *, direction: Any,
                                ethertype: Any = "IPv4", protocol: Any = None, port_range_min: Any = None,
                                port_range_max: Any = None, remote_ip_prefix: Any = None,
                                remote_group_id: Any = None, remote_address_group_id: Any = None,
                                description: str = "") -> SecurityGroupRule:
        """Validate like Neutron (direction, ethertype vs prefix family, protocol, ports) and de-duplicate."""
        self.ensure_project(project_id)
        sg = self.get_security_group(project_id, security_group_id)
        if direction not in ("ingress", "egress"):
            raise invalid_attr("direction", f"'{direction}' is not in ['ingress', 'egress']")
        if ethertype is None:
            ethertype = "IPv4"
        if isinstance(ethertype, str) and ethertype.lower() in ("ipv4", "ipv6"):
            ethertype = "IPv4" if ethertype.lower() == "ipv4" else "IPv6"
        else:
            raise invalid_attr("ethertype", f"'{ethertype}' is not in ['IPv4', 'IPv6']")
        proto = self._normalise_protocol(protocol, ethertype)
        pmin = self._port_value(port_range_min, "port_range_min")
        pmax = self._port_value(port_range_max, "port_range_max")
        num = self._proto_num(proto, ethertype)
        if pmin is not None or pmax is not None:
            if num is None:
                raise ApiError(400, "Must also specify protocol if port range is given.",
                               code="SecurityGroupProtocolRequiredWithPorts")
            if num in ICMP_PROTOCOLS:
                for value, attr, fname in ((pmin, "port_range_min", "type"), (pmax, "port_range_max", "code")):
                    if value is not None and not 0 <= value <= 255:
                        raise ApiError(400, f"Invalid value for ICMP {fname} ({attr}) {value}. It must be 0 to "
                                            "255.", code="SecurityGroupInvalidIcmpValue")
                if pmin is None and pmax is not None:
                    raise ApiError(400, f"ICMP code (port-range-max) {pmax} is provided but ICMP type "
                                        "(port-range-min) is missing.", code="SecurityGroupMissingIcmpType")
            elif num in PORT_PROTOCOLS:
                if pmin == 0 or pmax == 0:
                    raise ApiError(400, "Invalid value for port 0.", code="SecurityGroupInvalidPortValue")
                for value in (pmin, pmax):
                    if value is not None and not 1 <= value <= 65535:
                        raise ApiError(400, f"Invalid value for port {value}.",
                                       code="SecurityGroupInvalidPortValue")
                if pmin is None or pmax is None or pmin > pmax:
                    raise ApiError(400, "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                                   code="InvalidInput")
            else:
                raise ApiError(400, f"Invalid protocol {proto} for port range, only supported for TCP, UDP, "
                                    "UDPLITE, SCTP and DCCP.", code="SecurityGroupInvalidProtocolForPortRange")
        prefix = normalized = None
        if remote_ip_prefix is not None:
            if remote_group_id is not None:
                raise ApiError(400, "Only remote_ip_prefix or remote_group_id may be provided.",
                               code="SecurityGroupRemoteGroupAndRemoteIpPrefix")
            prefix, normalized = self._normalise_prefix(remote_ip_prefix, ethertype)
        if remote_group_id is not None:
            if not isinstance(remote_group_id, str):
                raise invalid_attr("remote_group_id", f"'{remote_group_id}' is not a valid UUID")
            remote_group_id = self.get_security_group(project_id, remote_group_id).id
        if remote_address_group_id is not None:
            raise ApiError(404, f"Address group {remote_address_group_id} could not be found.",
                           code="AddressGroupNotFound")
        rule = SecurityGroupRule(id="", project_id=sg.project_id, security_group_id=sg.id, direction=direction,
                                 ethertype=ethertype, protocol=proto, port_range_min=pmin, port_range_max=pmax,
                                 remote_ip_prefix=prefix, normalized_cidr=normalized,
                                 remote_group_id=remote_group_id, description=description)
        existing = self._rule_keys.get(sg.id, {}).get(self._rule_key(rule))
        if existing is not None:
            raise ApiError(409, f"Security group rule already exists. Rule id is {existing}.",
                           code="SecurityGroupRuleExists")
        self._check_quota("security_group_rules", project_id)
        rule.id = self._new_id()
        rule.belongs_to_default_sg = sg.is_default
        self.security_group_rules[rule.id] = rule
        self._own("security_group_rules", rule)
        sg.rules.append(rule.id)
        self._rule_keys.setdefault(sg.id, {})[self._rule_key(rule)] = rule.id
        sg.touch()
        self._emit("security_group_rule.create", rule)
        return rule

    @staticmethod
    def _normalise_protocol(protocol: Any, ethertype: str) -> str | None:
        if protocol is None:
            return None
        if isinstance(protocol, bool):
            protocol = str(protocol)
        if isinstance(protocol, int):
            text = str(protocol)
        elif isinstance(protocol, str):
            text = protocol.strip().lower()
        else:
            text = str(protocol)
        if text in ANY_PROTOCOL or text == "":
            return None
        names = sorted(IP_PROTOCOL_MAP)
        if text in IP_PROTOCOL_MAP:
            if ethertype == "IPv4" and text in IPV6_ONLY_PROTOCOLS:
                raise ApiError(400, f"Invalid ethertype {ethertype} for protocol {text}.",
                               code="SecurityGroupEthertypeConflictWithProtocol")
            return text
        if text.isdigit() and 0 <= int(text) <= 255:
            return str(int(text))
        raise ApiError(400, f"Security group rule protocol {protocol} not supported. Only protocol values "
                            f"{[None] + names} and integer representations [0 to 255] are supported.",
                       code="SecurityGroupRuleInvalidProtocol")

    @staticmethod
    def _port_value(value: Any, attr: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise invalid_attr(attr, f"'{value}' is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise invalid_attr(attr, f"'{value}' is not an integer")

    @staticmethod
    def _normalise_prefix(prefix: Any, ethertype: str) -> tuple[str, str]:
        if not isinstance(prefix, str):
            raise invalid_attr("remote_ip_prefix", f"'{prefix}' is not a valid IP subnet")
        text = prefix.strip()
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise invalid_attr("remote_ip_prefix", f"'{prefix}' is not a valid IP subnet") from None
        if "/" not in text:
            text = str(net)
        if (net.version == 4) != (ethertype == "IPv4"):
            raise ApiError(400, f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                           code="SecurityGroupRuleParameterConflict")
        return text, str(net)

    def delete_security_group_rule(self, project_id: str, rule_id: str) -> None:
        rule = self.get_security_group_rule(project_id, rule_id)
        self._drop_rule(rule)
        self._emit("security_group_rule.delete", rule)

    def rules_of(self, sg: SecurityGroup) -> list[SecurityGroupRule]:
        rules = self.security_group_rules
        return [rules[r] for r in sg.rules if r in rules]

    def ports_of_security_group(self, sg_id: str) -> list[Port]:
        return [self.ports[i] for i in self._sg_ports.get(sg_id, ()) if i in self.ports]
