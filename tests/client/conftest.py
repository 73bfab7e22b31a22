"""Fixtures for the Django-free client tests (run with ``-p no:django``)."""
