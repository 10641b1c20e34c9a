# Type stubs for norbert.compat (its submodules are imported on first use).

from norbert.compat import openunmix as openunmix

__all__ = ["openunmix"]
