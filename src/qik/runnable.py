"""The plugin API's spelling of :mod:`qik.model.runnable` (everything public in it)."""

from qik.model.runnable import *  # noqa: F403
from qik.model.runnable import __all__ as __all__
