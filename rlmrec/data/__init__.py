"""Datasets in the RLMRec folder format: loading, validation and the built-in demo."""

from rlmrec.data.dataset import (
    Dataset,
    load_dataset,
    load_folder,
    load_profiles,
    resolve_data_root,
)

__all__ = ["Dataset", "load_dataset", "load_folder", "load_profiles", "resolve_data_root"]
