"""The ``aigi`` command line, one module per verb. Conventions: ``--detector`` takes a registered name or a
saved directory; data sets are ``--data``; every command prints the same result record.

Importing the verb modules registers their commands; ``aigi --help`` lists them in this import order."""

# isort: off
from aigi.cli.common import app
from aigi.cli import detect  # noqa: F401
from aigi.cli import train  # noqa: F401
from aigi.cli import serve  # noqa: F401
from aigi.cli import evaluate  # noqa: F401
from aigi.cli import data  # noqa: F401
# isort: on

__all__ = ["app"]
