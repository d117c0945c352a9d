"""Running graphs: argument checks, the reference interpreter, backends and importers.

``arguments`` (the run-time argument checks every backend shares), ``interpreter``
(the numpy reference whose behaviour defines the semantics), ``backends`` (finding
backend plugins, ``rg.compile`` and the compiled-model contract), ``importers``
(finding importer plugins, ``rg.import_onnx``).
"""
