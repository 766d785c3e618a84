"""The security-group verification suite (issue 4; not built yet)."""
