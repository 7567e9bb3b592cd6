"""The plugin API's spelling of :mod:`qik.model.dep` (everything public in it)."""

from qik.model.dep import *  # noqa: F403
from qik.model.dep import __all__ as __all__
