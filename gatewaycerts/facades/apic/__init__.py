"""Huawei ROMA Connect / APIG SSL certificate API under /v2/{project_id}/apic."""
