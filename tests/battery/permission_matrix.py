"""The permission matrix: one row per (URL pattern name, HTTP method), one expected
status per caller. tests/battery/test_permission_matrix.py walks the URLconf and
fails on any endpoint without a row here, and on any row for an endpoint that is gone.

Callers, in column order:

    anon   no credentials
    bot    bot-1's API key (bot-1 belongs to bob)
    carol  viewer (an auditor)
    bob    trader who owns bot-1
    oscar  trader who owns nothing: every object of bot-1 is another desk's to him
    rita   risk_manager
    alice  compliance_officer
    adam   admin

Writes are sent with an empty JSON object: a caller the endpoint admits gets
its validation error (400) or, for endpoints that need no body, does the thing
(200/201/202); a caller it refuses gets 401/403/404. "200|503" accepts either
(/healthz answers 503 when the broker is down, to anyone). Every 4xx also asserts that
no row of any table changed.

To add an endpoint: add its row (path with placeholders filled from the fixture
objects: {order} {agent} {key} {alert} {approval} {report} {export} {hold}
{webhook} {seq} {verification} {tree_size} {witness} {subscription} {username}) and the statuses in column order.
"""

from __future__ import annotations

from dataclasses import dataclass

CALLERS = ("anon", "bot", "carol", "bob", "oscar", "rita", "alice", "adam")

# URL namespaces with their own permission system and tests, left out of the walk.
EXCLUDED_NAMESPACES = {
    "admin": "the Django admin: staff login and per-model permissions (tests/*/test_admin.py)",
}


@dataclass(frozen=True)
class Row:
    path: str
    statuses: str  # one status per caller, space-separated, in CALLERS order ("200|503": either)

    def expected(self, caller: str) -> set[int]:
        codes = self.statuses.split()
        assert len(codes) == len(CALLERS), f"{self.path}: {len(codes)} statuses"
        return {int(code) for code in codes[CALLERS.index(caller)].split("|")}


# fmt: off
MATRIX: dict[tuple[str, str], Row] = {
    #                                                                          anon bot carol bob oscar rita alice adam
    ("surveillance:order-submit", "POST"):        Row("/api/v1/orders/",                       "401 400 403 400 400 400 400 400"),
    ("surveillance:order-detail", "GET"):         Row("/api/v1/orders/{order}/?agent_id={agent}", "401 200 200 200 404 200 200 200"),
    ("surveillance:config", "GET"):               Row("/api/v1/config/",                       "401 403 200 200 200 200 200 200"),
    ("surveillance:config", "PUT"):               Row("/api/v1/config/",                       "401 403 403 403 403 403 400 400"),
    ("surveillance:kill-switch", "GET"):          Row("/api/v1/kill-switch/",                  "401 403 200 200 200 200 200 200"),
    ("surveillance:kill-switch", "POST"):         Row("/api/v1/kill-switch/",                  "401 403 403 403 403 400 400 400"),
    ("surveillance:agent-risk-limits", "GET"):    Row("/api/v1/agents/{agent}/risk-limits/",   "401 403 200 200 404 200 200 200"),
    ("surveillance:agent-risk-limits", "PUT"):    Row("/api/v1/agents/{agent}/risk-limits/",   "401 403 403 403 403 400 400 400"),
    ("surveillance:alert-list", "GET"):           Row("/api/v1/alerts/",                       "401 403 200 200 200 200 200 200"),
    ("surveillance:alert-detail", "GET"):         Row("/api/v1/alerts/{alert}/",               "401 403 200 200 404 200 200 200"),
    ("surveillance:alert-assign", "POST"):        Row("/api/v1/alerts/{alert}/assign/",        "401 403 403 403 403 403 200 200"),
    ("surveillance:alert-escalate", "POST"):      Row("/api/v1/alerts/{alert}/escalate/",      "401 403 403 403 403 403 400 400"),
    ("surveillance:alert-resolve", "POST"):       Row("/api/v1/alerts/{alert}/resolve/",       "401 403 403 403 403 403 400 400"),
    ("surveillance:surveillance-run", "POST"):    Row("/api/v1/surveillance/run/",             "401 403 403 403 403 403 200 200"),
    ("audit:agent-list", "GET"):                  Row("/api/v1/agents/",                       "401 403 200 200 200 200 200 200"),
    ("audit:agent-list", "POST"):                 Row("/api/v1/agents/",                       "401 403 403 403 403 400 400 400"),
    ("audit:agent-keys", "GET"):                  Row("/api/v1/agents/{agent}/keys/",          "401 403 200 200 404 200 200 200"),
    ("audit:agent-keys", "POST"):                 Row("/api/v1/agents/{agent}/keys/",          "401 403 403 403 403 400 400 400"),
    ("audit:agent-key-revoke", "POST"):           Row("/api/v1/agents/{agent}/keys/{key}/revoke/", "401 403 403 403 403 200 200 200"),
    ("audit:agent-status", "POST"):               Row("/api/v1/agents/{agent}/status/",        "401 403 403 403 403 400 400 400"),
    ("audit:event-list", "GET"):                  Row("/api/v1/events/?agent_id={agent}",      "401 403 200 200 200 200 200 200"),
    ("audit:event-list", "POST"):                 Row("/api/v1/events/",                       "401 400 403 403 403 403 403 403"),
    ("audit:event-detail", "GET"):                Row("/api/v1/events/{seq}/",                 "401 403 200 200 404 200 200 200"),
    ("audit:log-verify", "POST"):                 Row("/api/v1/log/verify/",                   "401 403 403 403 403 403 202 202"),
    ("audit:verification-detail", "GET"):         Row("/api/v1/log/verifications/{verification}/", "401 403 403 403 403 403 200 200"),
    ("audit:export-list", "GET"):                 Row("/api/v1/log/exports/",                  "401 403 200 200 200 200 200 200"),
    ("audit:export-list", "POST"):                Row("/api/v1/log/exports/",                  "401 403 202 403 403 202 202 202"),
    ("audit:export-detail", "GET"):               Row("/api/v1/log/exports/{export}/",         "401 403 200 404 404 200 200 200"),
    ("audit:export-download", "GET"):             Row("/api/v1/log/exports/{export}/download/", "401 403 200 404 404 200 200 200"),
    ("audit:log-public-key", "GET"):              Row("/api/v1/log/public-key/",               "200 200 200 200 200 200 200 200"),
    ("audit:checkpoint-list", "GET"):             Row("/api/v1/log/checkpoints/",              "401 403 200 200 200 200 200 200"),
    ("audit:checkpoint-list", "POST"):            Row("/api/v1/log/checkpoints/",              "401 403 403 403 403 403 201 201"),
    ("audit:checkpoint-latest", "GET"):           Row("/api/v1/log/checkpoints/latest/",       "200 200 200 200 200 200 200 200"),
    ("audit:proof-inclusion", "GET"):             Row("/api/v1/log/proofs/inclusion/?seq=0&tree_size=1", "401 404 200 200 200 200 200 200"),
    ("audit:proof-consistency", "GET"):           Row("/api/v1/log/proofs/consistency/?first=1&second=1", "200 200 200 200 200 200 200 200"),
    ("webhooks:webhook-list", "GET"):             Row("/api/v1/webhooks/",                     "401 403 200 200 200 200 200 200"),
    ("webhooks:webhook-list", "POST"):            Row("/api/v1/webhooks/",                     "401 403 403 403 403 403 400 400"),
    ("webhooks:webhook-enable", "POST"):          Row("/api/v1/webhooks/{webhook}/enable/",    "401 403 403 403 403 403 200 200"),
    ("webhooks:webhook-deliveries", "GET"):       Row("/api/v1/webhooks/{webhook}/deliveries/", "401 403 200 200 200 200 200 200"),
    ("accounts:token-obtain", "POST"):            Row("/api/v1/auth/token/",                   "400 400 400 400 400 400 400 400"),
    ("approvals:approval-list", "GET"):           Row("/api/v1/approvals/",                    "401 200 200 200 200 200 200 200"),
    ("approvals:approval-detail", "GET"):         Row("/api/v1/approvals/{approval}/",         "401 200 200 200 404 200 200 200"),
    ("approvals:approval-approve", "POST"):       Row("/api/v1/approvals/{approval}/approve/", "401 403 403 403 403 403 400 400"),
    ("approvals:approval-deny", "POST"):          Row("/api/v1/approvals/{approval}/deny/",    "401 403 403 403 403 403 400 400"),
    ("reporting:report-list", "GET"):             Row("/api/v1/reports/",                      "401 403 200 200 200 200 200 200"),
    ("reporting:report-list", "POST"):            Row("/api/v1/reports/",                      "401 403 403 403 403 403 400 400"),
    ("reporting:report-detail", "GET"):           Row("/api/v1/reports/{report}/",             "401 403 200 404 404 200 200 200"),
    ("reporting:report-download", "GET"):         Row("/api/v1/reports/{report}/download/",    "401 403 200 404 404 200 200 200"),
    ("reporting:retention-manifest", "GET"):      Row("/api/v1/retention/manifest/",           "401 403 200 200 200 200 200 200"),
    ("reporting:legalhold-list", "GET"):          Row("/api/v1/legal-holds/",                  "401 403 403 403 403 403 200 200"),
    ("reporting:legalhold-list", "POST"):         Row("/api/v1/legal-holds/",                  "401 403 403 403 403 403 403 400"),
    ("reporting:legalhold-release", "POST"):      Row("/api/v1/legal-holds/{hold}/release/",   "401 403 403 403 403 403 403 400"),
    ("healthz", "GET"):                           Row("/healthz",                              "200|503 200|503 200|503 200|503 200|503 200|503 200|503 200|503"),
    ("schema", "GET"):                            Row("/api/schema/",                          "401 200 200 200 200 200 200 200"),
    ("docs", "GET"):                              Row("/api/docs/",                            "302 200 200 200 200 200 200 200"),
    ("audit:checkpoint-cosignatures", "GET"):    Row("/api/v1/log/checkpoints/{tree_size}/cosignatures/", "200 200 200 200 200 200 200 200"),
    ("audit:checkpoint-cosignatures", "POST"):   Row("/api/v1/log/checkpoints/{tree_size}/cosignatures/", "400 400 400 400 400 400 400 400"),
    ("audit:witness-list", "GET"):               Row("/api/v1/log/witnesses/",                "401 403 200 200 200 200 200 200"),
    ("audit:witness-list", "POST"):              Row("/api/v1/log/witnesses/",                "401 403 403 403 403 403 403 400"),
    ("audit:witness-revoke", "POST"):            Row("/api/v1/log/witnesses/{witness}/revoke/", "401 403 403 403 403 403 403 200"),
    ("audit:user-list", "GET"):                  Row("/api/v1/users/",                        "401 403 403 403 403 403 403 200"),
    ("audit:user-list", "POST"):                 Row("/api/v1/users/",                        "401 403 403 403 403 403 403 400"),
    ("audit:user-role", "POST"):                 Row("/api/v1/users/{username}/role/",        "401 403 403 403 403 403 403 400"),
    ("surveillance:order-cancel", "POST"):       Row("/api/v1/orders/{order}/cancel/",        "401 403 403 400 400 400 400 400"),
    ("surveillance:position-list", "GET"):       Row("/api/v1/positions/",                    "401 403 200 200 200 200 200 200"),
    ("surveillance:alert-history", "GET"):       Row("/api/v1/alerts/{alert}/history/",       "401 403 200 200 404 200 200 200"),
    ("surveillance:alert-note", "POST"):         Row("/api/v1/alerts/{alert}/notes/",         "401 403 403 403 403 403 400 400"),
    ("surveillance:alert-reopen", "POST"):       Row("/api/v1/alerts/{alert}/reopen/",        "401 403 403 403 403 403 400 400"),
    ("reporting:subscription-list", "GET"):      Row("/api/v1/reports/subscriptions/",        "401 403 403 403 403 403 200 200"),
    ("reporting:subscription-list", "POST"):     Row("/api/v1/reports/subscriptions/",        "401 403 403 403 403 403 400 400"),
    ("reporting:subscription-deactivate", "POST"): Row("/api/v1/reports/subscriptions/{subscription}/deactivate/", "401 403 403 403 403 403 200 200"),
    ("reporting:retention-purge", "GET"):        Row("/api/v1/retention/purge/",              "401 403 403 403 403 403 403 200"),
    ("reporting:retention-purge", "POST"):       Row("/api/v1/retention/purge/",              "401 403 403 403 403 403 403 400"),
    ("metrics", "GET"):                          Row("/metrics",                              "200 200 200 200 200 200 200 200"),
    ("home", "GET"):                             Row("/",                                     "200 200 200 200 200 200 200 200"),
    ("redoc", "GET"):                            Row("/api/redoc/",                           "302 200 200 200 200 200 200 200"),
}
# fmt: on
