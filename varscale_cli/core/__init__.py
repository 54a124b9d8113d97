"""The core: dtypes, fans, distributions, initializers and the random stream.

Nothing here does I/O or knows a file format; everything above it (the spec, the engine, the
formats, the statistics, the CLI) builds on these pieces.
"""
