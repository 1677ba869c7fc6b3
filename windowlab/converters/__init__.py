"""Checkpoint converters: official / upstream layouts -> windowlab state dicts.

Converters are pure functions on state dicts; they never import a paper's model code.
"""
from .checkpoint import (CheckpointMismatchError, init_from_pretrained_cfg, load_checkpoint_file,
                         load_pretrained, load_state_dict_strict, strip_prefix,
                         unwrap_state_dict)

__all__ = ['CheckpointMismatchError', 'init_from_pretrained_cfg', 'load_checkpoint_file',
           'load_pretrained',
           'load_state_dict_strict', 'strip_prefix', 'unwrap_state_dict']
