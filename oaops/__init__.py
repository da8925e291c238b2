"""oaops: operations and compliance for an OA office system (OA办公系统运维管理)."""

__version__ = "0.1.0"
