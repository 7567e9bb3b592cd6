"""The pygraph plugin: dependencies on a Python module's import graph, and import linting.

Configure it with ``[plugins] pygraph = "qik.pygraph"``; then a dep
``{type = "pygraph", pyimport = "a.b"}`` covers the files of ``a.b``, of every repo module it
imports transitively, and the versions of the distributions it imports. ``qik pygraph.check``
lints imports against each space's ``fence``.
"""
