"""``python -m flopopt`` runs the command line."""

from flopopt.cli.main import main

main()
