"""Reporting services: reports (request, generate, schedule), retention (policies,
legal holds, purge, manifest). Content and rendering are internal modules."""
