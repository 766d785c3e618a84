"""Cloud-Twin: the OpenStack-compatible multi-cloud emulator (issue 3; not built yet)."""
