"""Synthetic data: shapes benchmark, tiny models, hub-schema dataset fixtures."""
