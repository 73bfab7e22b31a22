"""Reporting's models, re-exported here: other code imports them from
`reporting.models`, never from the submodules.

- reports: reports, legal holds and the retention lock;
- subscriptions: report subscriptions and their email deliveries."""

from .reports import LegalHold, Report, RetentionLock
from .subscriptions import ReportDelivery, ReportSubscription

__all__ = ["LegalHold", "Report", "ReportDelivery", "ReportSubscription", "RetentionLock"]
