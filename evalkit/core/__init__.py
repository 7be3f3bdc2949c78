"""The core layer: records, result files, the sample store, dataset access, box formats, the registry.

Imports nothing from the layers above (tasks, adapters, backends, runner, interop, commands).
"""
