"""``python -m mmconvplug``: the ``mmconvplug`` command (:mod:`.cli`)."""
import sys

from mmconvplug.cli import main

if __name__ == '__main__':
    sys.exit(main())
