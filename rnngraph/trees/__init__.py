"""Recursive nets over trees and DAGs.

``structures``: tree data (:class:`TreeBatch`, :func:`batch`, :func:`from_parents`,
:func:`from_children`), re-exported here as ``rg.trees``; ``recursion``: a graph
applied over the nodes of a tree (``rg.recursive``), the level layout every backend
runs (``layout``) and the feeds it takes.

Examples
--------
>>> import numpy as np, rnngraph as rg
>>> leaf = lambda v: np.full(2, v)
>>> b = rg.trees.batch([(leaf(0.0), [leaf(1.0), leaf(2.0)]), leaf(3.0)])  # two trees
>>> b.num_nodes, b.num_levels
(4, 2)
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
