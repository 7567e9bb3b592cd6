"""The ``qik.uv`` plugin: locked, installed, cached virtualenvs per space, made with uv.

Enable it with ``[plugins] uv = "qik.uv"``; see ``docs/uv.md``.
"""
