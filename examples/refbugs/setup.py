# Only the C extension lives here; every other piece of metadata is in pyproject.toml.
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "refbugs._refbugs",
            sources=["src/refbugs/_refbugs.c"],
            extra_compile_args=["-Wall"],
        )
    ]
)
