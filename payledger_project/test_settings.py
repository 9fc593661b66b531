"""Settings for the test suite: the real ones, with a fast password hasher."""

from payledger_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
