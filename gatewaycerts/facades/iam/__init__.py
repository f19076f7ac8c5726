"""The IAM dialect: access keys (AK/SK) in the shape of Huawei IAM's permanent access keys."""
