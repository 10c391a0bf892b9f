"""Validates OCSF JSON lines (egressscan drift --format ocsf) against a JSON Schema.

  ocsf_validate.py SCHEMA FILE
Prints {"events": N, "errors": E} and exits 1 when an event does not validate (each error on
stderr: the line, the path and the message) or when FILE holds no event.
"""
import json
import sys

import jsonschema


def main():
    schema_path, events_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    n, errors = 0, 0
    with open(events_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            n += 1
            for e in validator.iter_errors(json.loads(line)):
                errors += 1
                path = "/".join(str(p) for p in e.absolute_path)
                print(f"line {lineno}: /{path}: {e.message[:300]}", file=sys.stderr)
    print(json.dumps({"events": n, "errors": errors}))
    return 1 if errors or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
