"""Reads multi-document YAML (e.g. `helm template` output) on stdin, prints a JSON array of the
non-empty documents. Used by helm_test.sh so that assertions are made with jq on parsed objects,
never with grep on YAML text. Needs PyYAML (Debian: python3-yaml)."""
import json
import sys

try:
    import yaml
except ImportError:
    sys.exit("yaml2json.py: PyYAML is missing: apt-get install python3-yaml")

docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
json.dump(docs, sys.stdout)
