"""The plugin API's spelling of :mod:`qik.model.ctx` (everything public in it)."""

from qik.model.ctx import *  # noqa: F403
from qik.model.ctx import __all__ as __all__
