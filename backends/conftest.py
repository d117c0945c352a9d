"""The backends' doctests run with the suite; the TVM backend's only where TVM is installed."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("tvm") else ["rnngraph_tvm/*"]
