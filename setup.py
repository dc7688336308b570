"""Only the C extension lives here (pyproject.toml holds everything else): setuptools' table for
extensions in pyproject.toml is still experimental.

scheduler/_names.c is the extender's names-mode accelerator (see scheduler/fragments.py). It is
optional: without a C compiler and Python's headers WattWise installs and runs without it, only
slower at thousands of candidate nodes (./dev installs both, and the tests require it)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("wattwise.scheduler._names", ["scheduler/_names.c"], optional=True)])
