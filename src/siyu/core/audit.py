"""Audit trail writes (same transaction as the audited change)."""

from __future__ import annotations

from siyu.core.models import AuditEntry


def audit(*, actor: str, action: str, target_type: str, target_id, data: dict | None = None,
          user=None) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor[:200], user=user, action=action, target_type=target_type,
        target_id=str(target_id), data=data or {},
    )
