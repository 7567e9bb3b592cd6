"""The ``qik`` and ``qikx`` entry points (:mod:`qik.commands.cli`)."""

from qik.commands.cli import main as main
from qik.commands.cli import qikx_main as qikx_main

__all__ = ["main", "qikx_main"]
