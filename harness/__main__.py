"""python -m harness: the command line (harness.cli), imported under the error contract."""

import sys

from harness.errors import imported


def main() -> int:
    return imported("harness", "harness.cli", "--debug" in sys.argv[1:]).main()


if __name__ == "__main__":
    sys.exit(main())
