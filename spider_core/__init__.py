"""spidertwin: test multi-cloud infrastructure software at scale without paying for clouds."""

__version__ = "0.1.0"
