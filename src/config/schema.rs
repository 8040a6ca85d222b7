//! The configuration described by its own types. Every settings type
//! derives `schemars::JsonSchema`; from that one description come
//!
//! - the bounds of every number, written once on the field
//!   (`#[schemars(range(min = …, max = …))]`) and checked at load by one
//!   walk ([`check_bounds`]), the error naming the key;
//! - the reference in docs/configuration.md ([`reference`]): every key, its
//!   type, default, bounds, whether a production deployment must set it
//!   (`#[schemars(extend("x-production" = "why"))]`) and its doc comment. A
//!   test fails when the file is stale.

use serde_json::{Map, Value};

use super::{Config, ENV_KEYS, ENV_PREFIX};

/// The JSON Schema (2020-12) of the configuration file.
pub fn schema() -> Value {
    schemars::schema_for!(Config).to_value()
}

/// A schema node with its `$ref` followed and a nullable `anyOf` or type
/// list unwrapped: the type the value has when present, and whether it may
/// be absent.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> (&'a Value, bool) {
    if let Some(name) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        && let Some(def) = root.get("$defs").and_then(|d| d.get(name))
    {
        return (def, false);
    }
    if let Some(any) = node.get("anyOf").and_then(Value::as_array)
        && any.len() == 2
        && let Some(other) = any.iter().find(|v| v.get("type") != Some(&"null".into()))
    {
        return (resolve(root, other).0, true);
    }
    let nullable = node
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == "null"));
    (node, nullable)
}

fn type_name(node: &Value) -> Option<&str> {
    match node.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

fn properties(node: &Value) -> Option<&Map<String, Value>> {
    node.get("properties").and_then(Value::as_object)
}

/// What a map's or an array's elements are, when they are tables.
fn table_of<'a>(root: &'a Value, node: &'a Value) -> Option<(&'a Value, Shape)> {
    let (ty, _) = resolve(root, node);
    let (elem, shape) = match type_name(ty)? {
        "array" => (ty.get("items")?, Shape::Array),
        "object" if properties(ty).is_none() => (ty.get("additionalProperties")?, Shape::Map),
        _ => return None,
    };
    let (elem, _) = resolve(root, elem);
    properties(elem).map(|_| (elem, shape))
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Array,
    Map,
}

/// The bounds a number's field declares: inclusive minimum and maximum,
/// or an exclusive minimum.
struct Bounds {
    min: Option<Value>,
    max: Option<Value>,
    above: Option<Value>,
}

impl Bounds {
    fn of(node: &Value) -> Option<Self> {
        let get = |k: &str| node.get(k).cloned();
        if !matches!(type_name(node), Some("integer" | "number")) {
            return None;
        }
        // An unsigned type's own `minimum: 0` is no declared bound.
        let unsigned = node
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| f.starts_with("uint"));
        let min = get("minimum")
            .filter(|m| !(unsigned && m.as_f64() == Some(0.0)) || node.get("maximum").is_some());
        Some(Self {
            min,
            max: get("maximum"),
            above: get("exclusiveMinimum"),
        })
    }

    fn admits(&self, v: f64) -> bool {
        let f = |b: &Option<Value>| b.as_ref().and_then(Value::as_f64);
        f(&self.min).is_none_or(|m| v >= m)
            && f(&self.max).is_none_or(|m| v <= m)
            && f(&self.above).is_none_or(|m| v > m)
    }

    fn text(&self) -> Option<String> {
        let low = match (&self.above, &self.min) {
            (Some(a), _) => Some(format!("more than {a}")),
            (None, Some(m)) => Some(format!("{m}")),
            (None, None) => None,
        };
        match (low, &self.max, &self.above) {
            (Some(low), Some(max), None) => Some(format!("{low} to {max}")),
            (Some(low), Some(max), Some(_)) => Some(format!("{low}, at most {max}")),
            (Some(low), None, None) => Some(format!("at least {low}")),
            (Some(low), None, Some(_)) => Some(low),
            (None, Some(max), _) => Some(format!("at most {max}")),
            (None, None, _) => None,
        }
    }
}

fn join(key: &str, name: &str) -> String {
    if key.is_empty() {
        name.to_owned()
    } else {
        format!("{key}.{name}")
    }
}

/// Checks every number of `config` against the bounds its field declares,
/// through tables, arrays of tables and maps of tables. A number that is
/// not finite (TOML's `nan`, `inf`) is refused too.
pub fn check_bounds(config: &Config, err: &mut impl FnMut(&str, String)) {
    let root = schema();
    match serde_json::to_value(config) {
        Ok(value) => check_value(&root, &root, &value, "", err),
        Err(e) => err("(configuration)", format!("cannot be described: {e}")),
    }
}

fn check_value(
    root: &Value,
    node: &Value,
    value: &Value,
    key: &str,
    err: &mut impl FnMut(&str, String),
) {
    let (ty, nullable) = resolve(root, node);
    if value.is_null() {
        if !nullable && matches!(type_name(ty), Some("integer" | "number")) {
            err(key, "must be a finite number".into());
        }
        return;
    }
    if let Some(props) = properties(ty) {
        for (name, sub) in props {
            if let Some(v) = value.get(name) {
                check_value(root, sub, v, &join(key, name), err);
            }
        }
        return;
    }
    match (type_name(ty), value) {
        (Some("array"), Value::Array(items)) => {
            if let Some(elem) = ty.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check_value(root, elem, v, &format!("{key}[{i}]"), err);
                }
            }
        }
        (Some("object"), Value::Object(entries)) => {
            if let Some(elem) = ty.get("additionalProperties").filter(|e| e.is_object()) {
                for (name, v) in entries {
                    check_value(root, elem, v, &format!("{key}.{name:?}"), err);
                }
            }
        }
        (_, Value::Number(n)) => {
            if let (Some(bounds), Some(v)) = (Bounds::of(ty), n.as_f64())
                && !bounds.admits(v)
                && let Some(text) = bounds.text()
            {
                err(key, format!("{n} must be {text}"));
            }
        }
        _ => {}
    }
}

/// One key of the reference.
struct Row {
    key: String,
    ty: String,
    default: String,
    bounds: String,
    production: Option<String>,
    about: String,
}

/// One table of the reference: its header and its keys.
struct Section {
    header: String,
    about: String,
    /// Why a production deployment must have this table, if it must.
    production: Option<String>,
    rows: Vec<Row>,
}

fn about(node: &Value) -> String {
    let text = node
        .get("description")
        .or_else(|| node.get("title"))
        .and_then(Value::as_str)
        .unwrap_or("");
    text.split("\n\n")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn type_text(root: &Value, node: &Value) -> String {
    let (ty, nullable) = resolve(root, node);
    let base = if let Some(variants) = ty.get("oneOf").or_else(|| ty.get("enum")) {
        let names: Vec<String> = variants
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("const").unwrap_or(v).as_str())
            .map(|s| format!("`\"{s}\"`"))
            .collect();
        names.join(" \\| ")
    } else {
        match type_name(ty) {
            Some("array") => format!(
                "array of {}",
                ty.get("items").map_or("?".into(), |i| type_text(root, i))
            ),
            Some("object") => format!(
                "table of {}",
                ty.get("additionalProperties")
                    .map_or("?".into(), |i| type_text(root, i))
            ),
            Some("integer") => "integer".into(),
            Some("number") => "number".into(),
            Some("boolean") => "boolean".into(),
            Some("string") => "string".into(),
            _ => "value".into(),
        }
    };
    if nullable {
        format!("{base}, optional")
    } else {
        base
    }
}

fn toml_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => format!("`{s:?}`"),
        Value::Array(a) if a.is_empty() => "`[]`".into(),
        Value::Object(o) if o.is_empty() => "`{}`".into(),
        other => format!("`{other}`"),
    }
}

fn production(node: &Value) -> Option<String> {
    node.get("x-production")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn collect(
    root: &Value,
    table: &Value,
    header: &str,
    field: Option<&Value>,
    out: &mut Vec<Section>,
) {
    let mut section = Section {
        header: header.to_owned(),
        about: field.map(about).unwrap_or_default(),
        production: field.and_then(production),
        rows: Vec::new(),
    };
    let required: Vec<&str> = table
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut nested = Vec::new();
    for (name, node) in properties(table).into_iter().flatten() {
        let key = join(header_key(header), name);
        let (ty, _) = resolve(root, node);
        if properties(ty).is_some() {
            nested.push((ty, format!("[{key}]"), node));
            continue;
        }
        if let Some((elem, shape)) = table_of(root, node) {
            let header = match shape {
                Shape::Array => format!("[[{key}]]"),
                Shape::Map => format!("[{key}.<name>]"),
            };
            nested.push((elem, header, node));
            continue;
        }
        let env = if ENV_KEYS.contains(&key.as_str()) {
            format!(
                " Env: `{ENV_PREFIX}{}`.",
                key.to_uppercase().replace('.', "_")
            )
        } else {
            String::new()
        };
        let default = match node.get("default") {
            Some(d) => toml_text(d),
            None if required.contains(&name.as_str()) => "required".into(),
            None => String::new(),
        };
        section.rows.push(Row {
            key: name.clone(),
            ty: type_text(root, node),
            default,
            bounds: Bounds::of(ty).and_then(|b| b.text()).unwrap_or_default(),
            production: production(node),
            about: format!("{}{env}", about(node)),
        });
    }
    out.push(section);
    for (ty, header, field) in nested {
        collect(root, ty, &header, Some(field), out);
    }
}

/// `[a.b]` → `a.b`; `[[a.b]]` → `a.b[]`; `[a.<name>]` → `a.<name>`; the
/// top level (`""`) → `""`.
fn header_key(header: &str) -> &str {
    header.trim_start_matches('[').trim_end_matches(']')
}

/// Every table of the configuration, with its keys.
fn sections() -> Vec<Section> {
    let root = schema();
    let mut sections = Vec::new();
    collect(&root, &root, "", None, &mut sections);
    sections
}

/// The keys a production deployment must set, with why: `(key, why)`.
pub fn production_keys() -> Vec<(String, String)> {
    production_keys_of(&sections())
}

fn production_keys_of(sections: &[Section]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in sections {
        if let Some(why) = &s.production {
            out.push((header_key(&s.header).to_owned(), why.clone()));
        }
        for r in &s.rows {
            if let Some(why) = &r.production {
                out.push((join(header_key(&s.header), &r.key), why.clone()));
            }
        }
    }
    out
}

/// The reference of every key, as Markdown: generated, never edited.
pub fn reference() -> String {
    let sections = sections();
    let mut md = String::new();
    md.push_str("### Keys a production deployment must set\n\n");
    md.push_str(
        "The defaults are a laptop's; deploy/config/production.toml sets each of these.\n\n",
    );
    for (key, why) in production_keys_of(&sections) {
        md.push_str(&format!("- `{key}`: {why}\n"));
    }
    for s in sections {
        let title = if s.header.is_empty() {
            "Top level"
        } else {
            &s.header
        };
        md.push_str(&format!("\n### `{title}`\n\n"));
        if !s.about.is_empty() {
            md.push_str(&format!("{}\n\n", s.about));
        }
        if let Some(why) = &s.production {
            md.push_str(&format!(
                "A production deployment must have this table: {why}\n\n"
            ));
        }
        if s.rows.is_empty() {
            continue;
        }
        md.push_str("| Key | Type | Default | Bounds | Production | What it does |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        for r in s.rows {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                r.key,
                r.ty,
                r.default,
                r.bounds,
                if r.production.is_some() {
                    "must set"
                } else {
                    ""
                },
                r.about
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests;
