"""The plugin API's spelling of :mod:`qik.model.venv` (everything public in it)."""

from qik.model.venv import *  # noqa: F403
from qik.model.venv import __all__ as __all__
