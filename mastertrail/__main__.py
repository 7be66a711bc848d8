"""``python -m mastertrail``: the command line."""

from mastertrail.cli import main

if __name__ == "__main__":
    main()
