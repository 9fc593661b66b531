from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings.

    DRF's CharField turns numbers and booleans into text; for names,
    credentials and phone numbers that hides a client bug (a phone number
    sent as a number has already lost its "+" or leading "0").
    """

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
