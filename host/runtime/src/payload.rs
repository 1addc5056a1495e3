//! Temporal payloads ↔ WIT values.
//!
//! Plugins declare typed signatures in WIT; Temporal carries arguments and
//! results as `json/plain` payloads. This module converts between the two
//! by reading the WIT type, so a plugin never parses JSON itself.
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool` | `true` / `false` |
//! | `u8`…`u64`, `s8`…`s64` | number, range-checked (64-bit also from a decimal string) |
//! | `f32`, `f64` | number; `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | `char` | one-character string |
//! | `string` | string |
//! | `list<T>`, `list<T, N>` | array (exactly N long) |
//! | `record` | object; fields written in snake_case, read in kebab-case, snake_case or camelCase; `option` fields may be omitted |
//! | `tuple<…>` | array of that length |
//! | `variant` | `{"case": payload}`, or `"case"` for a case without payload |
//! | `enum` | string |
//! | `option<T>` | `null` or the value |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` |
//! | `flags` | array of the set flags' names |
//! | `map<K, V>` | object when keys are strings, else array of `[k, v]` pairs |
//!
//! Conversion errors name the path inside the value (`.items[2].qty`), the
//! expected WIT type and what was found. Nothing here panics on any input.

use serde_json::{Map as JsonMap, Number, Value as Json};
use std::fmt;
use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// Temporal's metadata key naming a payload's encoding.
pub const ENCODING_KEY: &str = "encoding";
/// The encoding Caisson reads and writes.
pub const JSON_PLAIN: &[u8] = b"json/plain";

/// A JSON value that does not fit a WIT type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PayloadError {
    /// Where inside the value, e.g. `.items[2].qty` (empty at the top).
    pub path: String,
    /// What the WIT type wanted.
    pub expected: String,
    /// What was there instead.
    pub found: String,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "expected {}, found {}", self.expected, self.found)
        } else {
            write!(f, "at `{}`: expected {}, found {}", self.path, self.expected, self.found)
        }
    }
}

/// At most the first 80 characters of `text`, for error messages.
pub fn excerpt(text: &str) -> String {
    if text.chars().count() > 80 { format!("{}…", text.chars().take(80).collect::<String>()) } else { text.to_owned() }
}

fn describe(json: &Json) -> String {
    let text = json.to_string();
    let short = if text.chars().count() > 40 { format!("{}…", text.chars().take(40).collect::<String>()) } else { text };
    let kind = match json {
        Json::Null => return "null".into(),
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    };
    format!("{kind} {short}")
}

/// The WIT spelling of a type, for messages.
pub fn wit_type_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit_type_name(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", wit_type_name(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", wit_type_name(&m.key()), wit_type_name(&m.value())),
        Type::Record(r) => {
            let fields: Vec<String> = r.fields().map(|f| format!("{}: {}", f.name, wit_type_name(&f.ty))).collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => format!("tuple<{}>", t.types().map(|t| wit_type_name(&t)).collect::<Vec<_>>().join(", ")),
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, wit_type_name(&t)),
                    None => c.name.to_owned(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", wit_type_name(&o.ty())),
        Type::Result(r) => {
            format!("result<{}, {}>", r.ok().map_or("_".into(), |t| wit_type_name(&t)), r.err().map_or("_".into(), |t| wit_type_name(&t)))
        }
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) | Type::Borrow(_) => "resource".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// `order-id` → `order_id`.
pub fn snake_case(kebab: &str) -> String {
    kebab.replace('-', "_")
}

/// `order-id` → `orderId`.
fn camel_case(kebab: &str) -> String {
    let mut out = String::with_capacity(kebab.len());
    let mut upper = false;
    for c in kebab.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// True when `key` spells the WIT name `name` in kebab, snake or camel case.
fn name_matches(key: &str, name: &str) -> bool {
    key == name || key == snake_case(name) || key == camel_case(name)
}

/// What to do with JSON object fields that a WIT record does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownFields {
    /// Ignore them (the default): a client that adds a field to an
    /// argument breaks no running workflow, as with every Temporal SDK.
    #[default]
    Ignore,
    /// Refuse them, naming each (a plugin's `strict_payloads = true`).
    Refuse,
}

/// Converts JSON to a value of WIT type `ty`, ignoring unknown record
/// fields. `path` prefixes error paths.
pub fn json_to_val(json: &Json, ty: &Type, path: &str) -> Result<Val, PayloadError> {
    convert(json, ty, path, UnknownFields::Ignore)
}

/// [`json_to_val`] with a choice about unknown record fields.
pub fn json_to_val_with(json: &Json, ty: &Type, path: &str, unknown: UnknownFields) -> Result<Val, PayloadError> {
    convert(json, ty, path, unknown)
}

fn convert(json: &Json, ty: &Type, path: &str, unknown: UnknownFields) -> Result<Val, PayloadError> {
    let json_to_val = |json: &Json, ty: &Type, path: &str| convert(json, ty, path, unknown);
    let mismatch = || PayloadError { path: path.to_owned(), expected: wit_type_name(ty), found: describe(json) };
    Ok(match ty {
        Type::Bool => Val::Bool(json.as_bool().ok_or_else(mismatch)?),
        Type::S8 => Val::S8(int(json, path, ty)?),
        Type::U8 => Val::U8(int(json, path, ty)?),
        Type::S16 => Val::S16(int(json, path, ty)?),
        Type::U16 => Val::U16(int(json, path, ty)?),
        Type::S32 => Val::S32(int(json, path, ty)?),
        Type::U32 => Val::U32(int(json, path, ty)?),
        Type::S64 => Val::S64(int(json, path, ty)?),
        Type::U64 => Val::U64(int(json, path, ty)?),
        Type::Float32 => Val::Float32(float(json).ok_or_else(mismatch)? as f32),
        Type::Float64 => Val::Float64(float(json).ok_or_else(mismatch)?),
        Type::Char => {
            let s = json.as_str().ok_or_else(mismatch)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch()),
            }
        }
        Type::String => Val::String(json.as_str().ok_or_else(mismatch)?.to_owned()),
        Type::List(l) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let elem = l.ty();
            Val::List(items.iter().enumerate().map(|(i, v)| json_to_val(v, &elem, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?)
        }
        Type::FixedLengthList(l) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            if items.len() != l.len() as usize {
                return Err(mismatch());
            }
            let elem = l.ty();
            Val::FixedLengthList(
                items.iter().enumerate().map(|(i, v)| json_to_val(v, &elem, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?,
            )
        }
        Type::Map(m) => {
            let (kt, vt) = (m.key(), m.value());
            let pairs = match json {
                Json::Object(obj) if matches!(kt, Type::String) => obj
                    .iter()
                    .map(|(k, v)| Ok((Val::String(k.clone()), json_to_val(v, &vt, &format!("{path}.{k}"))?)))
                    .collect::<Result<Vec<_>, PayloadError>>()?,
                Json::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, pair)| match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => {
                            Ok((json_to_val(k, &kt, &format!("{path}[{i}][0]"))?, json_to_val(v, &vt, &format!("{path}[{i}][1]"))?))
                        }
                        _ => Err(PayloadError {
                            path: format!("{path}[{i}]"),
                            expected: "a [key, value] pair".into(),
                            found: describe(pair),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err(mismatch()),
            };
            Val::Map(pairs)
        }
        Type::Record(r) => {
            let obj = json.as_object().ok_or_else(mismatch)?;
            let mut used = 0;
            let mut fields = Vec::new();
            for f in r.fields() {
                let value = obj.iter().find(|(k, _)| name_matches(k, f.name)).map(|(_, v)| v);
                let fpath = format!("{path}.{}", snake_case(f.name));
                let val = match (value, &f.ty) {
                    (Some(v), ty) => {
                        used += 1;
                        json_to_val(v, ty, &fpath)?
                    }
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, ty) => {
                        return Err(PayloadError { path: fpath, expected: wit_type_name(ty), found: "nothing (missing field)".into() });
                    }
                };
                fields.push((f.name.to_owned(), val));
            }
            if used < obj.len() && unknown == UnknownFields::Refuse {
                let unknown: Vec<&String> = obj.keys().filter(|k| !r.fields().any(|f| name_matches(k, f.name))).collect();
                return Err(PayloadError {
                    path: path.to_owned(),
                    expected: wit_type_name(ty),
                    found: format!("unknown field(s) {unknown:?}"),
                });
            }
            Val::Record(fields)
        }
        Type::Tuple(t) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            if items.len() != t.types().len() {
                return Err(mismatch());
            }
            Val::Tuple(
                items
                    .iter()
                    .zip(t.types())
                    .enumerate()
                    .map(|(i, (v, ty))| json_to_val(v, &ty, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Variant(v) => {
            let (tag, payload) = tagged(json).ok_or_else(mismatch)?;
            let case = v.cases().find(|c| name_matches(tag, c.name)).ok_or_else(mismatch)?;
            let payload = match (case.ty, payload) {
                (Some(ty), Some(p)) => Some(Box::new(json_to_val(p, &ty, &format!("{path}.{tag}"))?)),
                (Some(ty), None) => {
                    return Err(PayloadError { path: format!("{path}.{tag}"), expected: wit_type_name(&ty), found: "nothing".into() });
                }
                (None, None | Some(Json::Null)) => None,
                (None, Some(other)) => {
                    return Err(PayloadError { path: format!("{path}.{tag}"), expected: "no payload".into(), found: describe(other) });
                }
            };
            Val::Variant(case.name.to_owned(), payload)
        }
        Type::Enum(e) => {
            let s = json.as_str().ok_or_else(mismatch)?;
            Val::Enum(e.names().find(|n| name_matches(s, n)).ok_or_else(mismatch)?.to_owned())
        }
        Type::Option(o) => match json {
            Json::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(json_to_val(v, &o.ty(), path)?))),
        },
        Type::Result(r) => {
            let (tag, payload) = tagged(json).ok_or_else(mismatch)?;
            let side = |t: Option<Type>, sub: &str| -> Result<Option<Box<Val>>, PayloadError> {
                match (t, payload) {
                    (Some(t), Some(p)) => Ok(Some(Box::new(json_to_val(p, &t, &format!("{path}.{sub}"))?))),
                    (Some(t), None) => {
                        Err(PayloadError { path: format!("{path}.{sub}"), expected: wit_type_name(&t), found: "nothing".into() })
                    }
                    (None, None | Some(Json::Null)) => Ok(None),
                    (None, Some(p)) => {
                        Err(PayloadError { path: format!("{path}.{sub}"), expected: "no payload".into(), found: describe(p) })
                    }
                }
            };
            match tag {
                "ok" => Val::Result(Ok(side(r.ok(), "ok")?)),
                "err" => Val::Result(Err(side(r.err(), "err")?)),
                _ => return Err(mismatch()),
            }
        }
        Type::Flags(f) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let mut set = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let name = item.as_str().and_then(|s| f.names().find(|n| name_matches(s, n))).ok_or_else(|| PayloadError {
                    path: format!("{path}[{i}]"),
                    expected: wit_type_name(ty),
                    found: describe(item),
                })?;
                if !set.iter().any(|s: &String| s == name) {
                    set.push(name.to_owned());
                }
            }
            Val::Flags(set)
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(PayloadError {
                path: path.to_owned(),
                expected: format!("{} (cannot cross a Temporal payload; use plain data types)", wit_type_name(ty)),
                found: describe(json),
            });
        }
    })
}

/// `{"tag": payload}` or `"tag"`.
fn tagged(json: &Json) -> Option<(&str, Option<&Json>)> {
    match json {
        Json::String(s) => Some((s, None)),
        Json::Object(obj) if obj.len() == 1 => obj.iter().next().map(|(k, v)| (k.as_str(), Some(v))),
        _ => None,
    }
}

fn float(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn int<T: TryFrom<i128>>(json: &Json, path: &str, ty: &Type) -> Result<T, PayloadError> {
    let err = |why: &str| PayloadError { path: path.to_owned(), expected: wit_type_name(ty), found: format!("{}{why}", describe(json)) };
    let wide: i128 = match json {
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i128::from(i)
            } else if let Some(u) = n.as_u64() {
                i128::from(u)
            } else {
                return Err(err(" (not an integer)"));
            }
        }
        // 64-bit values beyond 2^53 arrive as strings from JavaScript clients.
        Json::String(s) if matches!(ty, Type::S64 | Type::U64) => s.parse().map_err(|_| err(" (not an integer)"))?,
        _ => return Err(err("")),
    };
    T::try_from(wide).map_err(|_| err(" (out of range)"))
}

/// Converts a WIT value to JSON. Record fields and tags are written in
/// snake_case. Resources and streams, which cannot occur in a value that
/// passed the signature check, become `null`.
pub fn val_to_json(val: &Val) -> Json {
    match val {
        Val::Bool(b) => Json::Bool(*b),
        Val::S8(n) => Json::from(*n),
        Val::U8(n) => Json::from(*n),
        Val::S16(n) => Json::from(*n),
        Val::U16(n) => Json::from(*n),
        Val::S32(n) => Json::from(*n),
        Val::U32(n) => Json::from(*n),
        Val::S64(n) => Json::from(*n),
        Val::U64(n) => Json::from(*n),
        Val::Float32(f) => float_json(f64::from(*f)),
        Val::Float64(f) => float_json(*f),
        Val::Char(c) => Json::String(c.to_string()),
        Val::String(s) => Json::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => Json::Array(items.iter().map(val_to_json).collect()),
        Val::Map(pairs) => {
            if pairs.iter().all(|(k, _)| matches!(k, Val::String(_))) {
                let mut obj = JsonMap::new();
                for (k, v) in pairs {
                    if let Val::String(k) = k {
                        obj.insert(k.clone(), val_to_json(v));
                    }
                }
                Json::Object(obj)
            } else {
                Json::Array(pairs.iter().map(|(k, v)| Json::Array(vec![val_to_json(k), val_to_json(v)])).collect())
            }
        }
        Val::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (snake_case(k), val_to_json(v))).collect()),
        Val::Variant(tag, None) | Val::Enum(tag) => Json::String(snake_case(tag)),
        Val::Variant(tag, Some(p)) => Json::Object([(snake_case(tag), val_to_json(p))].into_iter().collect()),
        Val::Option(None) => Json::Null,
        Val::Option(Some(v)) => val_to_json(v),
        Val::Result(Ok(v)) => Json::Object([("ok".to_owned(), v.as_deref().map_or(Json::Null, val_to_json))].into_iter().collect()),
        Val::Result(Err(v)) => Json::Object([("err".to_owned(), v.as_deref().map_or(Json::Null, val_to_json))].into_iter().collect()),
        Val::Flags(names) => Json::Array(names.iter().map(|n| Json::String(snake_case(n))).collect()),
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => Json::Null,
    }
}

fn float_json(f: f64) -> Json {
    if f.is_nan() {
        Json::String("NaN".into())
    } else if f.is_infinite() {
        Json::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}

/// Why a list of payloads could not become a function's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A payload is not `json/plain` JSON.
    #[error("argument `{name}`: {message}")]
    Undecodable {
        /// The parameter name.
        name: String,
        /// What is wrong with the payload.
        message: String,
    },
    /// A payload does not fit the parameter's type.
    #[error("argument `{name}` {source}")]
    Mismatch {
        /// The parameter name.
        name: String,
        /// Where and how it does not fit.
        source: PayloadError,
    },
    /// Too few payloads for the parameters.
    #[error("missing argument `{name}` of type {expected}")]
    Missing {
        /// The parameter name.
        name: String,
        /// Its WIT type.
        expected: String,
    },
    /// More payloads than parameters.
    #[error("{given} arguments given, but the function takes {takes}")]
    TooMany {
        /// Payloads received.
        given: usize,
        /// Parameters declared.
        takes: usize,
    },
}

/// Converts JSON arguments to the values for parameters `params`
/// (name, type), ignoring unknown record fields. Trailing `option`
/// parameters may be left out.
pub fn args_to_vals(args: &[Json], params: &[(String, Type)]) -> Result<Vec<Val>, ArgsError> {
    args_to_vals_with(args, params, UnknownFields::Ignore)
}

/// [`args_to_vals`] with a choice about unknown record fields.
pub fn args_to_vals_with(args: &[Json], params: &[(String, Type)], unknown: UnknownFields) -> Result<Vec<Val>, ArgsError> {
    if args.len() > params.len() {
        return Err(ArgsError::TooMany { given: args.len(), takes: params.len() });
    }
    params
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| match (args.get(i), ty) {
            (Some(json), _) => convert(json, ty, "", unknown).map_err(|source| ArgsError::Mismatch { name: name.clone(), source }),
            (None, Type::Option(_)) => Ok(Val::Option(None)),
            (None, _) => Err(ArgsError::Missing { name: name.clone(), expected: wit_type_name(ty) }),
        })
        .collect()
}

/// Decodes one payload's bytes (with its `encoding`) into JSON.
pub fn decode_payload(encoding: Option<&[u8]>, data: &[u8]) -> Result<Json, String> {
    match encoding {
        Some(b"json/plain") | None => serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}")),
        Some(b"binary/null") => Ok(Json::Null),
        Some(other) => Err(format!(
            "payload encoding `{}` is not supported; send json/plain (the default of every Temporal SDK)",
            String::from_utf8_lossy(other)
        )),
    }
}

#[cfg(test)]
mod tests;
