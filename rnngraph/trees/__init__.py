"""Recursive nets over trees and DAGs.

``structures``: tree data (:class:`TreeBatch`, :func:`batch`, :func:`from_parents`,
:func:`from_children`), re-exported here as ``rg.trees``; ``recursion``: a graph
applied over the nodes of a tree (``rg.recursive``), the level layout every backend
runs (``layout``) and the feeds it takes.
"""

from rnngraph.trees.structures import (
    Structure,
    TreeBatch,
    TreeError,
    batch,
    from_children,
    from_parents,
)

__all__ = ["Structure", "TreeBatch", "TreeError", "batch", "from_children", "from_parents"]
