"""Comparison reports over the run store: the paper's table with significance
tests (``build``, ``render``), two-run comparisons (``compare``) and learning
curves (``plot``)."""
