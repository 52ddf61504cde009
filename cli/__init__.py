"""The ``rlmrec`` command line (installed as ``rlmrec.cli``). Commands only parse
options and call the library; no training or data logic lives here."""
