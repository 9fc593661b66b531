"""The one reader of the environment: ``env``, django-environ's interface.

Settings, gunicorn.conf.py, manage.py and the embedded PostgreSQL read every
variable through ``env.str``, ``env.bool``, ``env.int`` or ``env.list``, each
name written out once as a literal; ``.env.example`` lists them all, and
payledger_project/tests/test_environment.py holds the two lists equal.

django-environ's rules, except where they would surprise an operator
(docs/decisions/0008-one-environment-reader.md):
- A value is taken as written. django-environ reads a value that starts with
  "$" as the name of another variable (joke2k/django-environ#415), and a
  generated secret key may start with "$".
- A boolean is true for 1, true, yes or on (any case, spaces around ignored)
  and false for anything else, as PayLedger always read DEBUG.
- A list is comma-separated, each item stripped, empty items dropped
  ("pay.example.com, .example.org" is two hosts).
- A value that does not parse stops the process with one line naming the
  variable (``ImproperlyConfigured``, which the entry points print alone).

Imported before Django is set up (manage.py, gunicorn.conf.py): the standard
library, django-environ and Django's exceptions only.
"""

import environ
from django.core.exceptions import ImproperlyConfigured

# What a value must be, by the cast that failed on it.
EXPECTED = {int: "a whole number", float: "a number"}


class Environment(environ.Env):
    BOOLEAN_TRUE_STRINGS = ("1", "true", "yes", "on")

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        value = self.ENVIRON.get(var)
        if value is None:
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"{var} must be set.")
            return default
        try:
            return self.parse_value(value, cast)
        except ValueError:
            raise ImproperlyConfigured(
                f"{var} must be {EXPECTED.get(cast, 'a valid value')}."
            ) from None

    @classmethod
    def parse_value(cls, value, cast):
        if cast is bool:
            return value.strip().lower() in cls.BOOLEAN_TRUE_STRINGS
        if cast is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)


env = Environment()
