"""The commands: the click CLI (``qik``, ``qikx``), the ``:``-meta commands, and the run
modes that sit on top of the runner (``--since``, ``--watch``, ``--shard``, ``:cache``)."""
