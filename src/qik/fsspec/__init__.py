"""The fsspec cache plugin: ``[plugins] fsspec = "qik.fsspec"``, then ``type = "fsspec"``."""
