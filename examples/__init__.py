"""Runnable examples of what spidertwin is for (``python -m examples.<name>``)."""
