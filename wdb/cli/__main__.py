"""`python -m wdb.cli`."""
from . import cli

if __name__ == "__main__":
    cli()
