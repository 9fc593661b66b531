from payledger_project.exceptions import Conflict, DomainError, Forbidden


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


class AlreadyReversed(Conflict):
    code = "already_reversed"
    message = "This charge has already been reversed."


class InsufficientPhoneBalance(Conflict):
    code = "insufficient_phone_balance"
    message = "The phone's balance no longer covers this charge, so it cannot be given back."


class OwnSellerForbidden(Forbidden):
    code = "own_seller_forbidden"
    message = "Nobody decides credit for, or reverses the charges of, their own seller."


class StaffOnly(Forbidden):
    code = "staff_only"
    message = "Only staff decide credit and reverse charges."
