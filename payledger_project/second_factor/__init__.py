"""Staff's second factor: a TOTP authenticator (django-otp), with recovery codes.

With ``PAYLEDGER_STAFF_OTP_REQUIRED`` on (production's default), staff reach
the admin only from a session verified by a code, and move money through the
API only with a key minted with a code (docs/decisions/0014-staff-second-factor.md).
Sellers are never asked.
"""
