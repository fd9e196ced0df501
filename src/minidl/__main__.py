"""``python -m minidl`` runs the command-line interface."""

from minidl.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
