"""A pytest plugin that runs the tests in a process set up as the ``crs`` command sets its own.

``addopts = "-p crs.memory.pytest_allocator"`` loads it before pytest captures output, so the
process can still start itself again with the allocator tunables of
:mod:`crs.memory.allocator` (glibc reads them only at start).
"""

from crs.memory.allocator import ensure_private_allocator

ensure_private_allocator()
