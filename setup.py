"""Builds the optional C kernels (varscale_cli/_native/vskernels.c: transforms and moments;
vsstream.c: the fused Philox stream); see those files.

``optional=True``: without a C compiler the install still succeeds and varscale uses its
numpy path, which gives the same bytes, only slower.
"""

import platform
import struct

from setuptools import Extension, setup

# -ffp-contract=off: never fuse a*b+c into an FMA (bit-identity with numpy).
# -fno-math-errno: lets sqrt vectorise; IEEE sqrt results are unchanged. (Do not add
# -fno-fast-math after it: that flag switches math-errno back on.)
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
# 32-bit x86 compilers default to x87 maths, whose 80-bit intermediates round differently
# from numpy's float32 operations (up to 4 ulp in ~40% of normal values): use SSE2 instead.
# vskernels.c refuses to compile without it (FLT_EVAL_METHOD != 0), so the numpy path runs.
if struct.calcsize("P") == 4 and platform.machine().lower() in ("i386", "i486", "i586", "i686", "x86", "x86_64", "amd64"):
    FLAGS += ["-msse2", "-mfpmath=sse"]

setup(
    ext_modules=[
        Extension(
            "varscale_cli._native.vskernels",
            sources=[
                "varscale_cli/_native/vskernels.c",
                "varscale_cli/_native/vsstream.c",
                "varscale_cli/_native/vsqr.c",
            ],
            depends=["varscale_cli/_native/vsphilox.h"],
            extra_compile_args=FLAGS,
            # sqrt for the orthogonal QR (vsqr.c); the sampling and stats kernels use no libm.
            libraries=[] if platform.system() == "Windows" else ["m"],
            optional=True,
        )
    ]
)
