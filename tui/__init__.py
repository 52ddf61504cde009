"""``rlmrec tui``: a live Textual dashboard over the run store (installed as rlmrec.tui)."""
