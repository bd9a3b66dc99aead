"""glioseg's version, written once (``pyproject.toml``) and read here from the installed package's metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("glioseg")
except PackageNotFoundError:  # a source tree on the path without installing it (a GPU machine's run, say)
    __version__ = "0+unknown"
