"""ModelOps: datasets, models and monitors from one YAML spec, as AWS infrastructure."""

__all__ = ["__version__"]
__version__ = "0.1.0"
