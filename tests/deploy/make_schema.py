#!/usr/bin/env python3
"""Writes helm/regionpulse/values.schema.json. The schema is written here, in Python, because
it is easier to read and review than the JSON it produces; tests/deploy/chart_test checks the
committed file is this script's output. Every object refuses unknown keys unless it is a free
map (labels, annotations, nodeSelector, affinity, the programs' extra config)."""
import json
import pathlib

DURATION = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h)$"}
NULLABLE_DURATION = {"oneOf": [{"type": "null"}, DURATION]}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 63}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
K8S_QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}
FREE_MAP = {"type": "object"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def obj(properties, required=None, free=False):
    schema = {"type": "object", "properties": properties}
    if not free:
        schema["additionalProperties"] = False
    if required:
        schema["required"] = required
    return schema


def nullable(kind, **limits):
    return {"oneOf": [{"type": "null"}, dict({"type": kind}, **limits)]}


def image():
    return obj({
        "repository": {"type": "string", "minLength": 1},
        "tag": {"type": "string"},
        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    })


RESOURCES = obj({
    "requests": obj({"cpu": K8S_QUANTITY, "memory": K8S_QUANTITY, "ephemeral-storage": K8S_QUANTITY}),
    "limits": obj({"cpu": K8S_QUANTITY, "memory": K8S_QUANTITY, "ephemeral-storage": K8S_QUANTITY}),
})
LIST_OF_OBJECTS = {"type": "array", "items": {"type": "object"}}
# What both the agent's and the aggregator's pods take.
POD_PLACEMENT = {
    "priorityClassName": {"type": "string"},
    "tolerations": LIST_OF_OBJECTS,
    "nodeSelector": STRING_MAP,
    "affinity": FREE_MAP,
    "resources": RESOURCES,
    "podAnnotations": STRING_MAP,
}
MAX_UNAVAILABLE = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^[0-9]+%$"}]}

schema = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "regionpulse chart values",
    **obj({
        "nameOverride": {"type": "string"},
        "fullnameOverride": {"type": "string"},
        "regions": {"type": "array", "maxItems": 63, "items": obj({
            "name": NAME,
            "cidrs": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"}},
        }, required=["name", "cidrs"])},
        "activeRegion": {"type": "string"},
        "standbyRegions": {"type": "array", "items": NAME, "uniqueItems": True},
        "thresholds": obj({
            "degradedLoss": nullable("number", minimum=0, maximum=1),
            "degradedRttP99": NULLABLE_DURATION,
            "unreachableLoss": nullable("number", minimum=0, maximum=1),
            "quorumFraction": nullable("number", minimum=0.5, maximum=1),
            "minObserverNodes": nullable("integer", minimum=2),
            "replicationStaleness": NULLABLE_DURATION,
        }),
        "hold": NULLABLE_DURATION,
        "dwell": NULLABLE_DURATION,
        "maxDataLoss": NULLABLE_DURATION,
        "preferAvailability": nullable("boolean"),
        "replicationFlows": {"type": "array", "items": obj({
            "name": {"type": "string", "minLength": 1},
            "ports": {"type": "array", "minItems": 1, "items": PORT},
            "remote_region": NAME,
            "expected_min_rate": {"type": "string"},
        }, required=["name", "ports", "remote_region"])},
        "probeKey": obj({
            "existingSecret": {"type": "string"},
            "secretKey": {"type": "string", "minLength": 1},
        }),
        "tls": obj({
            "enabled": {"type": "boolean"},
            "mutual": {"type": "boolean"},
            # An absolute directory on the node, or empty.
            "nodeCertificatesHostPath": {"type": "string", "pattern": "^(/.*)?$"},
            "source": {"enum": ["certManager", "secrets"]},
            "certManager": obj({
                "issuerRef": obj({"name": {"type": "string", "minLength": 1}, "kind": {"type": "string"},
                                  "group": {"type": "string"}}, required=["name"]),
                "duration": {"type": "string"},
                "renewBefore": {"type": "string"},
            }),
            "aggregatorSecret": {"type": "string"},
            "agentSecret": {"type": "string"},
            "readersCaSecret": {"type": "string"},
        }),
        "agent": obj({
            "image": image(),
            "imagePullSecrets": LIST_OF_OBJECTS,
            "legacySysAdmin": {"type": "boolean"},
            "seccompProfile": obj({"type": {"enum": ["Unconfined", "RuntimeDefault", "Localhost"]},
                                   "localhostProfile": {"type": "string"}}, required=["type"]),
            "topologySource": {"enum": ["nodeLabels", "values"]},
            "region": {"type": "string"},
            "zone": {"type": "string"},
            "mountKernelFilesystems": {"type": "boolean"},
            "hostPaths": obj({
                "bpffs": {"type": "string", "pattern": "^/"},
                "tracefs": {"type": "string", "pattern": "^/"},
                "cgroup2": {"type": "string", "pattern": "^/"},
            }),
            "interfaces": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 15}},
            "probePort": PORT,
            "statusPort": PORT,
            "externalAggregators": {"type": "array", "items": {"type": "string", "pattern": r"^.+:[0-9]+$"}},
            "config": FREE_MAP,
            "maxUnavailable": MAX_UNAVAILABLE,
            **POD_PLACEMENT,
            "livenessProbe": obj({"periodSeconds": {"type": "integer", "minimum": 1},
                                  "failureThreshold": {"type": "integer", "minimum": 1}}),
            "readinessProbe": obj({"periodSeconds": {"type": "integer", "minimum": 1},
                                   "failureThreshold": {"type": "integer", "minimum": 1}}),
            "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
        }),
        "aggregator": obj({
            "enabled": {"type": "boolean"},
            "image": image(),
            "imagePullSecrets": LIST_OF_OBJECTS,
            "regions": {"type": "array", "items": NAME, "uniqueItems": True},
            "pinToRegion": {"type": "boolean"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
            "config": FREE_MAP,
            "grpcPort": PORT,
            "metricsPort": PORT,
            "service": obj({
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "annotations": STRING_MAP,
            }),
            "persistence": obj({
                "enabled": {"type": "boolean"},
                "storageClass": {"type": "string"},
                "size": {"type": "string"},
            }),
            "podDisruptionBudget": obj({
                "enabled": {"type": "boolean"},
                "maxUnavailable": MAX_UNAVAILABLE,
            }),
            **POD_PLACEMENT,
        }),
        "networkPolicy": obj({
            "enabled": {"type": "boolean"},
            "agentCIDRs": {"type": "array", "items": {"type": "string", "pattern": r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"}},
            "grpcClients": LIST_OF_OBJECTS,
            "metricsClients": LIST_OF_OBJECTS,
        }),
        "monitoring": obj({
            "serviceMonitor": obj({"enabled": {"type": "boolean"}, "interval": DURATION, "labels": STRING_MAP}),
            "podMonitor": obj({"enabled": {"type": "boolean"}, "interval": DURATION, "labels": STRING_MAP}),
            "prometheusRule": obj({
                "enabled": {"type": "boolean"},
                "labels": STRING_MAP,
                "regionStateFor": DURATION,
                "replicationLagSeconds": {"type": "number", "exclusiveMinimum": 0},
                "agentsNotReportingFraction": {"type": "number", "minimum": 0, "maximum": 1},
            }),
            "grafanaDashboard": obj({
                "enabled": {"type": "boolean"},
                "label": {"type": "string", "minLength": 1},
                "labelValue": {"type": "string"},
                "namespace": {"type": "string"},
            }),
        }),
    }),
}

if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parents[2] / "helm/regionpulse/values.schema.json"
    out.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
