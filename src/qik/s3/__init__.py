"""The S3 cache plugin: ``[plugins] s3 = "qik.s3"``, then ``[caches.NAME] type = "s3"``."""
