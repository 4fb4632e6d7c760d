"""A base-station event generator written blind (see README.md here).

It was written from the shared format and domain documents and public knowledge only,
without reading the project's own simulator or detectors, so that it can stand in for
an independent evaluation. Nothing in this package imports from ``edge.telecom``,
``models`` or ``simulators.telecom``.
"""
