"""The schedule every backend reads.

``schedule``: :class:`~rnngraph.program.schedule.Program` (regions in order, taps,
carries, step slots) made from a verified graph; ``recognize``: standard cells found in
a program's recurrent regions, which backends may run as their native ops.
"""
