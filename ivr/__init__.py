"""Contact-center controller for Asterisk: FastAGI call flow, YAML menus, call records."""

__version__ = "0.1.0"
