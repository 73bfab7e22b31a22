"""Witness keys, their cosignatures on checkpoints, and the k-of-n rule.

A witness (C2SP tlog-witness) is run outside the firm by an auditor or a
regulator. It checks that each checkpoint extends the last one it saw and
cosigns it (C2SP tlog-cosignature/v1). The server only stores what
verifies: a cosignature is accepted from a registered, unrevoked witness key
when it verifies over one of the stored checkpoints of that tree size.

With `COMPLIANCE_WITNESS_QUORUM` = k > 0, a checkpoint counts as published
once k distinct active witnesses have cosigned it; before that it is not the
"latest" the API hands out (witnesses still see it, they are what makes it
count). With k = 0 every checkpoint is published when signed.

Cosignatures are not appended to the log as records: they are
self-authenticating statements about the log, kept beside its checkpoints
and in every evidence bundle. Recording them would grow the log on every
witness round, so a quiet log would never stay quiet.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from compliance_client.note import (
    NoteError,
    checkpoint_body,
    parse_cosignature_line,
    verify_cosignature_line,
    witness_vkey,
)
from compliance_site.exceptions import Conflict, Forbidden, Invalid, NotFound

from ..models import Checkpoint, Cosignature, Witness
from .agents import parse_public_key
from .log import DEFAULT_LOG, Actor, record_event

MAX_CHECKPOINTS_PER_SIZE = 50  # heartbeats repeat a size; bound the search


def quorum() -> int:
    return max(0, int(settings.COMPLIANCE_WITNESS_QUORUM))


@transaction.atomic
def witness_register(
    *, name: str, public_key: str, acting_user: User, description: str = ""
) -> Witness:
    """Register a witness key (admins only: the quorum rests on who is trusted).
    Recorded as WITNESS_CHANGED in the same transaction."""
    try:
        raw = parse_public_key(public_key)
        vkey = witness_vkey(name, raw)
    except NoteError as exc:
        raise Invalid("invalid_witness_name", str(exc)) from exc
    if Witness.objects.filter(name=name).exists():
        raise Conflict("witness_exists", f"a witness named {name!r} is registered")
    witness = Witness.objects.create(
        name=name, public_key=raw, description=description, created_by=acting_user
    )
    record_event(
        "WITNESS_CHANGED",
        actor=Actor.for_user(acting_user),
        data={"name": name, "action": "registered", "public_key": public_key, "vkey": vkey},
    )
    return witness


@transaction.atomic
def witness_revoke(*, name: str, acting_user: User, reason: str = "") -> Witness:
    """Revoke a witness key: it stops counting and may not cosign again."""
    witness = Witness.objects.select_for_update().filter(name=name).first()
    if witness is None:
        raise NotFound("not_found", f"no witness named {name!r}")
    if witness.revoked_at is not None:
        raise Conflict("witness_revoked", f"witness {name!r} is already revoked")
    witness.revoked_at = timezone.now()
    witness.save(update_fields=["revoked_at"])
    record_event(
        "WITNESS_CHANGED",
        actor=Actor.for_user(acting_user),
        data={
            "name": name,
            "action": "revoked",
            "public_key": base64.b64encode(bytes(witness.public_key)).decode(),
            "reason": reason,
        },
    )
    return witness


def _normalise_line(witness: str, cosignature: str) -> str:
    """Accept the signature line as C2SP add-checkpoint returns it, or its bare base64."""
    text = cosignature.strip("\n")
    if not text.startswith("\u2014 "):
        text = f"\u2014 {witness} {text}"
    return text + "\n"


@transaction.atomic
def cosignature_add(*, tree_size: int, witness: str, cosignature: str) -> Cosignature:
    """Store a witness's cosignature on the checkpoint of `tree_size` it signs.

    Anyone may call this: the Ed25519 signature is the authentication. It must
    be by a registered, unrevoked witness and verify over a stored checkpoint
    of that size (409 `already_cosigned` if that witness cosigned it before)."""
    w = Witness.objects.filter(name=witness).first()
    if w is None:
        raise Forbidden("unknown_witness", f"no witness named {witness!r} is registered")
    if w.revoked_at is not None:
        raise Forbidden("witness_revoked", f"witness {witness!r} is revoked")
    line = _normalise_line(witness, cosignature)
    try:
        name, _ = parse_cosignature_line(line)
    except NoteError as exc:
        raise Invalid("invalid_cosignature", str(exc)) from exc
    if name != witness:
        raise Invalid("invalid_cosignature", "the line names another witness")
    candidates = Checkpoint.objects.filter(log__name=DEFAULT_LOG, tree_size=tree_size).order_by(
        "-timestamp_us"
    )[:MAX_CHECKPOINTS_PER_SIZE]
    last_error = f"no checkpoint of tree_size {tree_size}"
    for checkpoint in candidates:
        try:
            cosig = verify_cosignature_line(
                checkpoint_body(checkpoint.note), line, witness, bytes(w.public_key)
            )
        except NoteError as exc:
            last_error = str(exc)
            continue
        if Cosignature.objects.filter(checkpoint=checkpoint, witness=w).exists():
            raise Conflict("already_cosigned", f"{witness!r} already cosigned this checkpoint")
        Checkpoint.objects.select_for_update().filter(pk=checkpoint.pk).get()  # one at a time
        try:
            with transaction.atomic():
                stored = Cosignature.objects.create(
                    checkpoint=checkpoint, witness=w, timestamp=cosig.timestamp, line=line
                )
        except IntegrityError as exc:  # a concurrent resend of the same cosignature
            raise Conflict(
                "already_cosigned", f"{witness!r} already cosigned this checkpoint"
            ) from exc
        if quorum() and _active_cosigner_count(checkpoint) == quorum():
            # It counts as published from now: push it, with its cosignatures.
            from ..webhooks.services import checkpoint_notify

            checkpoint_notify(checkpoint)
        return stored
    if not candidates:
        raise NotFound("not_found", last_error)
    raise Forbidden("invalid_cosignature", last_error)


def note_with_cosignatures(checkpoint: Checkpoint) -> str:
    """The checkpoint note with every stored cosignature line appended (C2SP
    witnesses' lines follow the log's own signature)."""
    lines = [
        c.line for c in sorted(checkpoint.cosignatures.all(), key=lambda c: (c.created_at, c.pk))
    ]
    return checkpoint.note + "".join(lines)


def _active_cosigners() -> Count:
    return Count(
        "cosignatures",
        filter=Q(cosignatures__witness__revoked_at__isnull=True),
        distinct=True,
    )


def checkpoints_published(qs: QuerySet[Checkpoint]) -> QuerySet[Checkpoint]:
    """Only the checkpoints that count as published under the k-of-n rule."""
    k = quorum()
    if k == 0:
        return qs
    return qs.annotate(active_cosigners=_active_cosigners()).filter(active_cosigners__gte=k)


def _active_cosigner_count(checkpoint: Checkpoint) -> int:
    return (
        checkpoint.cosignatures.filter(witness__revoked_at__isnull=True)
        .values("witness")
        .distinct()
        .count()
    )


def is_published(checkpoint: Checkpoint) -> bool:
    k = quorum()
    return k == 0 or _active_cosigner_count(checkpoint) >= k


def latest_checkpoint(*, include_unpublished: bool = False) -> Checkpoint | None:
    """The newest checkpoint (that counts as published, unless asked otherwise)."""
    qs = Checkpoint.objects.filter(log__name=DEFAULT_LOG)
    if not include_unpublished:
        qs = checkpoints_published(qs)
    return qs.order_by("-timestamp_us").prefetch_related("cosignatures").first()


def checkpoints_of_size(tree_size: int) -> list[Checkpoint]:
    """The checkpoints of one tree size (heartbeats repeat a size), newest first,
    with their cosignatures and witnesses loaded."""
    return list(
        Checkpoint.objects.filter(log__name=DEFAULT_LOG, tree_size=tree_size)
        .order_by("-timestamp_us")
        .prefetch_related("cosignatures__witness")[:MAX_CHECKPOINTS_PER_SIZE]
    )
