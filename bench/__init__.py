"""Benchmarks of qik against another qik (for example upstream 0.2.10) on generated monorepos."""
