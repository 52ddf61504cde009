"""``python -m rlmrec``: the same as the ``rlmrec`` command."""

from rlmrec.cli.main import main

main()
