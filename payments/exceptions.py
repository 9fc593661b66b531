from payledger_project.exceptions import Conflict, DomainError


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    message = "The seller's balance does not cover this charge."


class DuplicateReference(Conflict):
    code = "duplicate_reference"
    message = "This seller already has a charge with this reference; charge_id names it."


class AlreadyDecided(Conflict):
    code = "already_decided"
    message = "This credit request has already been decided."


class IdempotencyKeyReused(DomainError):
    status_code = 422
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used with a different request."
