"""trust-console: an outbound-only trust agent for FLIP hubs, with an operator console."""

__version__ = "0.1.0"
