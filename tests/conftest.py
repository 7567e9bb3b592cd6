pytest_plugins = ["qik.testing"]
