"""Builders used only by tests, benchmarks and the reference-model training script: tiny real-architecture
checkpoints, hub-schema dataset fixtures, the bench harness. No user command imports this package (tested)."""
