"""Locust templates, lock monitor and the sponge-lock benchmark (issue 5; not built yet)."""
