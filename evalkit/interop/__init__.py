"""Other tools: the lmms-eval bridge and results reader, Ray data parallelism. Imported only when asked for."""
