"""The MOCK provider: spidertwin's AWS driver running against moto (an in-process AWS), no account needed.

`driver.py` (MockDriver), `backends.py` (which moto backend: `moto_worker.py` runs moto serialised in its
own worker process, `moto_backend.py` in this one), `moto_speedups.py` (moto hot spots, each checked
before use), `images.py` (the MOCK images as AMIs), `profile.py` + `profile.yaml` (CB-Spider's MOCK catalogue).
"""
