"""Weight sources: an explicit file, the cache, a published URL (sha256-checked), and offline importers."""

from psychofeat.weights.cache import cache_entry, read_manifest
from psychofeat.weights.sources import PretrainedSource, obtain
from psychofeat.weights.state_dict import check_state_dict, load_state_dict_file

__all__ = [
    "PretrainedSource",
    "cache_entry",
    "check_state_dict",
    "load_state_dict_file",
    "obtain",
    "read_manifest",
]
