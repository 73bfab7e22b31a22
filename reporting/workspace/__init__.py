"""The officer's workspace in the admin: the admin site itself (a dashboard as
its front page, the auditor's evidence page) and the dashboard's reads.

It lives in reporting, the rightmost app, because the dashboard reads every
app's state (approvals, alerts, kill switches, the log, webhooks, reports)."""
