"""``spider cluster``: Spider past one process, on engines that already do clustering.

PostgreSQL holds the shared MetaDB (and the cluster-wide sponge lock), one moto server is the MOCK
cloud every replica sees, N ``spider serve`` replicas share both, and HAProxy spreads clients over the
replicas that answer ``/spider/readyz``. ``spider cluster up`` starts all of it on one machine for
trying it out; ``docs/cluster.md`` brings the same parts up on several hosts from files users edit.

One module per component (``postgres``, ``moto``, ``replicas``, ``haproxy``), each a function that
starts it from the typed ``config.ClusterConfig`` and returns the ``procs.Child`` processes it made;
``up`` runs them in order and stops them in reverse.
"""
