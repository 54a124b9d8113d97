"""Builds the optional C transforms (varscale_cli/_native/vskernels.c); see that file.

``optional=True``: without a C compiler the install still succeeds and varscale uses its
numpy path, which gives the same bytes, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "varscale_cli._native.vskernels",
            sources=["varscale_cli/_native/vskernels.c", "varscale_cli/_native/vsqr.c"],
            # -ffp-contract=off: never fuse a*b+c into an FMA (bit-identity with numpy).
            # -fno-math-errno: lets sqrt vectorise; IEEE sqrt results are unchanged. (Do not
            # add -fno-fast-math after it: that flag switches math-errno back on.)
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno"],
            optional=True,
        )
    ]
)
