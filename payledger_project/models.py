from django.db import models


class ServiceOwnedBalance(models.Model):
    """A model whose ``balance`` only ``payments.services`` may write.

    A plain ``save()`` of an existing row writes every column but the balance,
    so an instance read before a charge committed (an admin form, a shell
    session) can never put back the balance it read. Services name
    ``balance`` in ``update_fields`` or move it in SQL. A new row starts at
    zero: money arrives only through a journaled movement.
    """

    class Meta:
        abstract = True

    def save(self, *args, update_fields=None, **kwargs) -> None:
        if self._state.adding:
            if self.balance != 0:
                raise ValueError(
                    f"A new {self._meta.verbose_name} starts at a zero balance; "
                    "money arrives through payments.services."
                )
        elif update_fields is None:
            update_fields = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "balance"
            ]
        super().save(*args, update_fields=update_fields, **kwargs)
