"""The optional C extension (``vskernels.c``) and its ctypes loader (`kernels`).

`varscale_cli.core.stream.native` decides whether the loader is used; nothing here imports
the sampler.
"""
