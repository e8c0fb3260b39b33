"""`python -m sgdtop` runs the command-line interface."""

from sgdtop.cli import main

if __name__ == "__main__":
    main()
