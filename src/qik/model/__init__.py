"""The model: what a project's configuration means at run time.

``ctx`` (context variables, templates) → ``venv`` (environments) → ``space`` (spaces,
modules, dotenv, fences) → ``runnable`` (one concrete invocation and its inputs) →
``cmd`` (commands and the runnables their factories make) → ``dep`` (dependencies,
including on other commands) → ``graph`` (the DAG and selection). Each imports only the
ones before it. The plugin API spells them ``qik.ctx``, ``qik.venv``, ``qik.space``,
``qik.runnable``, ``qik.cmd``, ``qik.dep`` and ``qik.graph``.
"""
