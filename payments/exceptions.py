from payledger_project.exceptions import Conflict


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    message = "The seller's balance does not cover this charge."


class AlreadyDecided(Conflict):
    code = "already_decided"
    message = "This credit request has already been decided."
