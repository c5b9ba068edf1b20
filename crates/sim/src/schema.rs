//! JSON-schema helpers for values the specs keep as given (pasted Kubernetes objects, model configs,
//! provenance): the schema the API server needs to store them untouched.

/// Schema of a list of free-form values (e.g. pasted Kubernetes objects).
pub fn any_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}})
}

/// Schema of a free-form object kept as is (Kubernetes `x-kubernetes-preserve-unknown-fields`).
pub fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// Schema of a free-form value kept as is: an object or a string (e.g. a pasted YAML document).
pub fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}
