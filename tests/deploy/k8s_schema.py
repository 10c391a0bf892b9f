#!/usr/bin/python3
"""k8s_schema.py - schema check of Kubernetes manifests against the API models of Debian's
python3-kubernetes (22.6: the Kubernetes 1.22 API): every field name must exist in its object's
model, with the right JSON type, and every field a model requires must be there. Fields added to
the API after 1.22 that the manifests use on purpose are listed in NEWER_FIELDS (with the version
that brought them) and checked for type only.

Run by tests/deploy/check.py with Debian's /usr/bin/python3 (where python3-kubernetes lives):
    /usr/bin/python3 tests/deploy/k8s_schema.py FILE.yaml ...
Prints one line per problem; exit 0 when there is none, 1 otherwise, 3 when the models are not
installed."""
import re
import sys

try:
    import yaml
    from kubernetes import client
except ImportError as e:  # pragma: no cover - reported as a skip by check.py
    print(f"cannot import the Kubernetes models: {e}")
    sys.exit(3)

# (model, JSON field) -> JSON type, for fields newer than the models.
NEWER_FIELDS = {
    ("V1CronJobSpec", "timeZone"): "str",  # 1.27 GA
    ("V1JobSpec", "podFailurePolicy"): "dict",  # 1.31 GA (beta, on by default, since 1.26)
}

# Model names by (apiVersion, kind).
MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("batch/v1", "Job"): "V1Job",
    ("batch/v1", "CronJob"): "V1CronJob",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}

PRIMITIVES = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "datetime": (str,),
    "date": (str,),
    "object": (str, int, float, bool, dict, list),  # IntOrString, Quantity, RawExtension
}


def required_fields(cls):
    """JSON names of the fields the model's constructor refuses to leave None."""
    req = []
    for attr, json_name in cls.attribute_map.items():
        setter = getattr(cls, attr)
        try:
            obj = cls.__new__(cls)
            obj.local_vars_configuration = client.Configuration()
            obj.local_vars_configuration.client_side_validation = True
            setter.fset(obj, None)
        except ValueError:
            req.append(json_name)
        except Exception:  # a setter that needs other fields set first: not a requirement check
            pass
    return req


def check(value, typ, path, problems):
    if typ in PRIMITIVES:
        if typ == "int" and isinstance(value, bool) or not isinstance(value, PRIMITIVES[typ]):
            problems.append(f"{path}: expected {typ}, got {type(value).__name__}")
        return
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{path}[{i}]", problems)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map")
            return
        for k, v in value.items():
            check(v, m.group(1), f"{path}.{k}", problems)
        return
    if typ == "dict":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object")
        return
    cls = getattr(client, typ, None)
    if cls is None:
        problems.append(f"{path}: unknown model {typ}")
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a {typ} object")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for key, v in value.items():
        if key in by_json:
            check(v, cls.openapi_types[by_json[key]], f"{path}.{key}", problems)
        elif (typ, key) in NEWER_FIELDS:
            check(v, NEWER_FIELDS[(typ, key)], f"{path}.{key}", problems)
        else:
            problems.append(f"{path}.{key}: no such field in {typ}")
    for name in required_fields(cls):
        if name not in value:
            problems.append(f"{path}: {typ} requires {name}")


def main(paths):
    problems = []
    n = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if not isinstance(doc, dict) or "kind" not in doc:
                    continue
                if doc.get("kind") == "Kustomization" or "kustomize" in str(doc.get("apiVersion")):
                    continue
                key = (doc.get("apiVersion"), doc.get("kind"))
                model = MODELS.get(key)
                where = f"{p}#{i}:{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
                if not model:
                    problems.append(f"{where}: no model known for {key}")
                    continue
                n += 1
                check(doc, model, where, problems)
    for pr in problems:
        print(pr)
    print(f"k8s_schema: {n} objects checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
