"""Build script for the optional native kernel of the validator (everything else is in pyproject.toml).

``solver/_simcore.c`` is the fast path of :mod:`solver.timing` for schedules that validate. It is
optional: where no C compiler is available the build goes on without it and the validator uses
its pure-Python reference path (same results, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("solver._simcore", ["solver/_simcore.c"], optional=True,
                             extra_compile_args=["-O2"])])
