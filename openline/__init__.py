"""openline: a self-hosted Bot Framework Direct Line service."""

__version__ = "0.1.0"
