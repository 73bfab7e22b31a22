"""Bot SDK and offline verifier for the compliance back-office. No Django.

Needs `cryptography` and `rfc8785` (see pyproject.toml); everything else is
the standard library. Public surface (CONTRACT section 11):

* `Signer`: an agent's Ed25519 key (`generate`, `from_private_key_file`).
* `ComplianceClient`: the gate (`submit_order`), events (`fill`, `cancel`,
  `record`, `record_venue`), the durable outbox (`outbox_path=`, `flush`,
  `pending`, `dead_letters`), read-backs and inclusion proofs.
* `Gate` (from `client.gate()`), `record_errors`, `compliance_gate`: the
  strategy-loop helpers.
* `compliance_client.venues.normalize`: venue messages to events.
* `python -m compliance_client` (keygen, register, rotate-key, outbox) and
  `python -m compliance_client.verify` (offline bundle verification).
"""

from .client import ComplianceClient, ComplianceError, Decision
from .gate import Gate, compliance_gate, record_errors
from .outbox import OutboxError
from .proofs import InclusionCheck, ProofError
from .signing import Signer

__all__ = [
    "ComplianceClient",
    "ComplianceError",
    "Decision",
    "Gate",
    "InclusionCheck",
    "OutboxError",
    "ProofError",
    "Signer",
    "compliance_gate",
    "record_errors",
]
