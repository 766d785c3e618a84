"""Cloud-Twin's optional data plane (``spider twin --dataplane netns``): every ACTIVE server becomes a
Linux network namespace whose nftables ruleset is compiled from its Neutron security groups, with TCP/UDP
responders inside, so a security-group suite can send real packets and see real allows and drops.

Modules: ``netns`` (names, ``ip -batch``, entering a namespace from a worker thread), ``layout`` (what the
twin's Nova/Neutron state says a VM's network looks like), ``nft`` (security groups -> nftables),
``responders`` (SSH-like banner, echo), ``probe`` (TCP/UDP/ICMP probes from inside namespaces),
``cleanup`` (the per-instance registry and stale-object removal) and ``manager`` (lifecycle and hooks).
"""
