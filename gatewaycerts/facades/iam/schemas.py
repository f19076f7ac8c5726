"""Marshmallow schemas of the IAM dialect (parse requests, document the OpenAPI contract); rules live in core."""

from __future__ import annotations

from marshmallow import Schema, fields

_ACCESS = {
    "description": "The access key id (AK): 20 upper-case letters and digits.",
    "example": "P83EVBZJMXCYTMUIIV7Z",
}


class ErrorDetailSchema(Schema):
    code = fields.Integer(metadata={"description": "The HTTP status.", "example": 400})
    message = fields.String(metadata={"example": "Invalid parameter value, parameterName:credential.role."})
    title = fields.String(metadata={"description": "The status's reason phrase.", "example": "Bad Request"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema)


class CreateCredentialSchema(Schema):
    role = fields.String(
        required=True,
        metadata={"description": "What the key may do in the project: admin, editor or viewer.", "example": "editor"},
    )
    description = fields.String(
        required=False, allow_none=True, metadata={"description": "At most 255 characters.", "example": "CI pipeline"}
    )


class CreateCredentialBodySchema(Schema):
    credential = fields.Nested(CreateCredentialSchema, required=True)


class UpdateCredentialSchema(Schema):
    status = fields.String(
        required=False,
        allow_none=True,
        metadata={"description": "active or inactive (an inactive key signs nothing).", "example": "inactive"},
    )
    description = fields.String(required=False, allow_none=True, metadata={"description": "At most 255 characters."})


class UpdateCredentialBodySchema(Schema):
    credential = fields.Nested(UpdateCredentialSchema, required=True)


class CredentialSchema(Schema):
    access = fields.String(metadata=_ACCESS)
    status = fields.String(metadata={"description": "active or inactive.", "example": "active"})
    role = fields.String(metadata={"description": "admin, editor or viewer.", "example": "editor"})
    project_id = fields.String(metadata={"description": "The project the key acts in."})
    create_time = fields.String(
        metadata={"description": "UTC, microseconds, like IAM's.", "example": "2020-01-08T06:25:19.000000Z"}
    )
    description = fields.String()


class CreatedCredentialSchema(CredentialSchema):
    secret = fields.String(
        metadata={"description": "The secret key (SK), 40 characters. Shown only in this answer: store it now."}
    )


class CreatedCredentialResultSchema(Schema):
    credential = fields.Nested(CreatedCredentialSchema)


class CredentialResultSchema(Schema):
    credential = fields.Nested(CredentialSchema)


class CredentialListSchema(Schema):
    credentials = fields.List(fields.Nested(CredentialSchema))


class AccessPathSchema(Schema):
    access = fields.String(required=True, metadata=_ACCESS)
