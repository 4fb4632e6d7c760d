"""The receiving side for fleets: collector on PostgreSQL, fleet health, correlation, desks.

Installed with the ``fleet`` extra (``pip install 'antifraud-edge[fleet]'``); the
agent itself never imports this package.
"""
