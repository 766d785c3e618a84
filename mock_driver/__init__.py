"""The MOCK provider: spidertwin's AWS driver running against moto (an in-process AWS), no account needed.

`driver.py` (MockDriver), `moto_backend.py` / `moto_worker.py` (moto, serialised, in its own worker
process), `moto_speedups.py` (guarded moto patches), `profile.py` + `profile.yaml` (CB-Spider's MOCK catalogue).
"""
