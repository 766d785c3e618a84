"""The concurrency harness: Locust templates (`templates.py`, `locustfile.py`) driven by `spider load`
(`run.py`, with setup and cleanup in `scenario.py` and the plan in `plan.py`), and the lock monitor
(`monitor.py`)."""
