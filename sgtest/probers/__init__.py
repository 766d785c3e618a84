"""Probers: how a case's probes are observed. ``netns`` (Cloud-Twin's data plane), ``ssh`` (real VMs,
as CB-Spider does) and ``model`` (no data plane: the rule model on the API read-back)."""

from __future__ import annotations

from sgtest.probers.base import (Prober, ProberError, ProberInfo, ProbeBatch, ProbeRequest, ProbeResult,
                                 VMTarget)

KINDS = ("netns", "ssh", "model")


def make_prober(kind: str, *, twin: str = "", client_ip: str = "", timeout_ms: int = 300, twin_cloud: str = "",
                twin_region: str = "") -> Prober:
    if kind == "model":
        from sgtest.probers.model import ModelProber

        return ModelProber(client_ip)
    if kind == "netns":
        from sgtest.probers.netns import DEFAULT_TWIN, NetnsProber

        return NetnsProber(twin or DEFAULT_TWIN, timeout_ms=timeout_ms, cloud=twin_cloud, region=twin_region)
    if kind == "ssh":
        from sgtest.probers.ssh import SshProber

        return SshProber(client_ip, timeout_s=max(timeout_ms / 1000, 1.0) if timeout_ms else 3.0, twin=twin,
                         twin_cloud=twin_cloud, twin_region=twin_region)
    raise ProberError(f"unknown prober '{kind}' (netns, ssh or model)")


__all__ = ["KINDS", "Prober", "ProberError", "ProberInfo", "ProbeBatch", "ProbeRequest", "ProbeResult",
           "VMTarget", "make_prober"]
