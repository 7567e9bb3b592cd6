"""qik: a cached command runner for monorepos."""

__version__ = "0.3.0"
#: The version of the plugin API. A plugin may declare the qik versions it supports.
PLUGIN_API = 1
