"""The plugin API's spelling of :mod:`qik.model.space` (everything public in it)."""

from qik.model.space import *  # noqa: F403
from qik.model.space import __all__ as __all__
