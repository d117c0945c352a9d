"""Gradients as graphs.

``reverse``: the adjoint graph by the signal-flow-graph rules (``rg.adjoint``,
``rg.vjp``, online and truncated variants); ``forward``: the tangent graph
(``rg.tangent``, ``rg.jvp``, ``rg.rtrl``). The per-op rules are in
``rnngraph.ops._adjoints`` and ``rnngraph.ops._tangents``.
"""
