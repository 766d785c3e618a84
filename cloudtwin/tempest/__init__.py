"""Tempest, OpenStack's own API tests, against Cloud-Twin: configuration, run and honest counting.

``python -m cloudtwin.tempest --regex '^tempest\\.api\\.compute\\.'`` (see ``docs/tempest.md``).
"""
