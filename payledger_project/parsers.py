import codecs
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant


class DuplicateKeyError(ValueError):
    pass


def _object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKeyError(f"the key {duplicate!r} appears more than once in one object")
    return data


class JSONBodyParser(JSONParser):
    """DRF's JSON parser, refusing bodies that could be read more than one way.

    A duplicated key (which value counts?) and a lone surrogate escape such as
    ``"\\ud800"`` (not Unicode text; it cannot be stored, hashed or echoed) are
    400 ``parse_error`` at any depth, before any view sees them. Absurdly
    nested bodies are a 400 too, not a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                object_pairs_hook=_object_without_duplicate_keys,
                parse_constant=strict_constant,
            )
            # Lone surrogates survive json.load but not UTF-8 encoding.
            json.dumps(data, ensure_ascii=False).encode()
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - a string is not valid Unicode text.") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        return data
