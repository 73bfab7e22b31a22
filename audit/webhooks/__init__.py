"""Webhook delivery (Standard Webhooks) from the audit app's outbox."""
