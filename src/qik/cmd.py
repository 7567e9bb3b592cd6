"""The plugin API's spelling of :mod:`qik.model.cmd` (everything public in it)."""

from qik.model.cmd import *  # noqa: F403
from qik.model.cmd import __all__ as __all__
