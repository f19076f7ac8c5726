"""Huawei CCM Private CA dialect."""
