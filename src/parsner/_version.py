"""The package's version (``parsner.__version__``), in a module that imports nothing.

Modules that record the version (run metadata, output markers, ``parsner --version``) import it from here, so
that none of them depends on the package's ``__init__``, whose ``Tagger`` sits at the top of the import graph.
Keep it equal to ``version`` in pyproject.toml.
"""

__version__ = "0.1.0"
