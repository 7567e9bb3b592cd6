"""qik-example: the plugin the guide (docs/plugins.md) builds, step by step."""

__version__ = "1.0.0"
