"""The intermediate representation: the graph, its types, the op table, params and files.

``graph`` (nodes, edges with delays, building and editing), ``types`` (tensor types,
symbolic sizes), ``registry`` (the op table every stage reads), ``params`` (parameter
specs and initial values), ``structure`` (strongly connected components, regions,
taps), ``verify`` (whole-graph checks), ``serialize`` / ``deserialize`` (the file
format). Nothing here imports a later stage of the pipeline.
"""
