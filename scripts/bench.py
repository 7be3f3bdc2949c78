"""`make bench`: see evalkit/testing/bench.py for what is measured."""

import sys

from evalkit.testing.bench import main

if __name__ == "__main__":  # vLLM spawns workers: keep engine creation under the main guard
    sys.exit(main(sys.argv[1:]))
