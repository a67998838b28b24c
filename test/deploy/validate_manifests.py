"""Validates every Kubernetes manifest under a directory, offline, and prints one JSON report.

- Core kinds: kubernetes-validate with its strict schemas (unknown fields are errors).
- Argo Rollouts kinds (Rollout, AnalysisTemplate): the openAPIV3Schema of the project's CRDs, made
  strict the way the API server's strict field validation is (an object that lists its properties
  accepts no others unless it preserves unknown fields), checked with jsonschema.
- Kustomization: every listed resource exists and every manifest beside it is listed.
- Any other kind is reported as unvalidated, which is a failure.

Usage: validate_manifests.py <manifest dir> <argo-rollouts CRD dir> [kubernetes version]
"""
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

CRD_FILES = {
    ("argoproj.io/v1alpha1", "Rollout"): "rollout-crd.yaml",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "analysis-template-crd.yaml",
}


def strict(schema):
    """OpenAPI v3 (Kubernetes structural schema) to a strict JSON schema."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(crd_dir, filename):
    with open(os.path.join(crd_dir, filename)) as f:
        crd = yaml.safe_load(f)
    version = crd["spec"]["versions"][0]
    schema = strict(version["schema"]["openAPIV3Schema"])
    # The API server checks these itself; metadata is an ObjectMeta.
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version['name']}"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    return schema


def main():
    manifest_dir, crd_dir = sys.argv[1], sys.argv[2]
    k8s_version = sys.argv[3] if len(sys.argv) > 3 else kubernetes_validate.utils.latest_version()
    schemas = {key: crd_schema(crd_dir, name) for key, name in CRD_FILES.items()}
    results = []
    for root, _dirs, files in sorted(os.walk(manifest_dir)):
        manifests = sorted(f for f in files if f.endswith((".yaml", ".yml")))
        for name in manifests:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, manifest_dir)
            with open(path) as f:
                try:
                    docs = [d for d in yaml.safe_load_all(f) if d is not None]
                except yaml.YAMLError as e:
                    results.append({"file": rel, "kind": None, "name": None, "validator": "yaml", "ok": False, "errors": [str(e)]})
                    continue
            for doc in docs:
                if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                    # Not a Kubernetes object (Prometheus configuration, rules...).
                    continue
                kind, api = doc["kind"], doc["apiVersion"]
                entry = {"file": rel, "kind": kind, "name": (doc.get("metadata") or {}).get("name")}
                errors = []
                if (api, kind) in schemas:
                    entry["validator"] = "argo-rollouts-crd"
                    validator = jsonschema.Draft7Validator(schemas[(api, kind)])
                    errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in validator.iter_errors(doc)]
                elif kind == "Kustomization":
                    entry["validator"] = "kustomization"
                    listed = doc.get("resources", [])
                    errors += [f"resource {r} does not exist" for r in listed if not os.path.exists(os.path.join(root, r))]
                    others = [m for m in manifests if m != name]
                    errors += [f"{m} is not listed in resources" for m in others if m not in listed]
                else:
                    entry["validator"] = "kubernetes-validate"
                    try:
                        kubernetes_validate.validate(doc, k8s_version, strict=True)
                    except kubernetes_validate.SchemaNotFoundError:
                        errors = [f"no schema for {api} {kind}: not validated"]
                    except kubernetes_validate.ValidationError as e:
                        errors = [f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}"]
                entry["ok"] = not errors
                entry["errors"] = errors
                results.append(entry)
    json.dump({"kubernetes_version": k8s_version, "results": results}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
