"""`python -m objectstore_s3` runs the command line."""

from .cli.commands import main

if __name__ == "__main__":
    main()
