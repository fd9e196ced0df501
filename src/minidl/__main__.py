"""``python -m minidl`` runs the command-line interface, as the ``minidl`` console script does."""

from minidl.cli.main import console

if __name__ == "__main__":
    raise SystemExit(console())
