"""What users run around the library: the CLI, the parity check, summaries, drawings,
the demo and the benchmark harness behind ``rnngraph bench``."""
