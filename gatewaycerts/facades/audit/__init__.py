"""The audit trail API in the style of Huawei Cloud Trace Service (CTS): GET /v3/{project_id}/traces."""
