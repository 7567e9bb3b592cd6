"""The plugin API's spelling of :mod:`qik.model.graph` (everything public in it)."""

from qik.model.graph import *  # noqa: F403
from qik.model.graph import __all__ as __all__
