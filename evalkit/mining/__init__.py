"""Mining CLIP-blind image pairs from an image collection (the MMVP construction; ``evalkit mine-pairs``).

embed.py (encoders, resumable embedding store) -> search.py (nearest neighbours, thresholds, ranking) ->
export.py (pairs and the MMVP / MMVP-VLM folders) <- annotations.py (what people write for the pairs).
mine.py runs the three steps. This package sits beside the runner: it uses core and the MMVP tasks' parsers.
"""
