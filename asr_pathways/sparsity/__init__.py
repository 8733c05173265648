"""The mask engine: block-wise magnitude pruning and per-language pathways for any PyTorch model.

Knows nothing about speech. Public API::

    prunable_parameters(model, include=None, exclude=None, shapes="matrix") -> {name: Parameter}
    magnitude_mask(weight, sparsity, block=(8, 1), norm="l2", candidates=None) -> bool Tensor
    select_masks(weights, sparsity, block=(8, 1), norm="l2", scope="layer"|"global", candidates=None) -> MaskSet
    MaskSet (union, intersection, difference, iou, revived, dropped, sparsity..., save/load)
    PathwayModel(module, prunable_names=None, masks=None, pruned_weights="keep_values")
    broadcast_masks(masks, src=0)
"""

from .blocks import (
    MatrixSelection,
    block_candidates,
    block_grid,
    block_scores,
    block_sparsity,
    expand_blocks,
    magnitude_mask,
    parse_block,
    select_masks,
)
from .masks import MaskSet, difference, dropped, intersection, iou, iou_per_matrix, own_plus_residual, revived, union
from .broadcast import broadcast_masks
from .pathways import KEEP_VALUES, ZERO_TRAINABLE, PathwayModel
from .select import (
    DEFAULT_EXCLUDE,
    DEFAULT_GROUPS,
    DEFAULT_INCLUDE,
    group_of,
    match_any,
    parameter_groups,
    prunable_names,
    prunable_parameters,
)

__all__ = [
    "MaskSet", "union", "intersection", "difference", "iou", "iou_per_matrix", "revived", "dropped",
    "own_plus_residual", "magnitude_mask", "select_masks", "block_scores", "block_grid", "block_candidates",
    "block_sparsity", "expand_blocks", "parse_block", "MatrixSelection", "PathwayModel", "broadcast_masks",
    "KEEP_VALUES", "ZERO_TRAINABLE", "prunable_parameters", "prunable_names", "group_of", "parameter_groups",
    "match_any", "DEFAULT_INCLUDE", "DEFAULT_EXCLUDE", "DEFAULT_GROUPS",
]
