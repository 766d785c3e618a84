"""Report rendering shared by every suite: markdown, JUnit XML, JSON (issue 4; not built yet)."""
