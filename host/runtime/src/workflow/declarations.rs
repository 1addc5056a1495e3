//! What a workflow component declares about itself through the optional
//! `caisson:workflow/declarations` export: its workflow types (for guest
//! libraries that define them at run time, which then run through the
//! `dynamic` export) and their signal, query and update handlers (listed
//! by `caisson check`).
//!
//! The host asks once, at load, in an instance of its own that is dropped
//! afterwards, bounded by the plugin's fuel, wall-clock timeout and memory
//! limit like any activation.

use wasmtime::component::Val;

/// What kind of message a handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    /// A signal.
    Signal,
    /// A query.
    Query,
    /// An update.
    Update,
}

impl std::fmt::Display for HandlerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HandlerKind::Signal => "signal",
            HandlerKind::Query => "query",
            HandlerKind::Update => "update",
        })
    }
}

/// One declared handler of a workflow type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerDeclaration {
    /// The name clients send.
    pub name: String,
    /// Signal, query or update.
    pub kind: HandlerKind,
    /// For updates: a validator runs before acceptance.
    pub has_validator: bool,
    /// One line from the guest, if it has one.
    pub description: Option<String>,
}

/// One declared workflow type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowDeclaration {
    /// The type name clients start.
    pub name: String,
    /// Handlers registered with the type.
    pub handlers: Vec<HandlerDeclaration>,
    /// One line from the guest, if it has one.
    pub description: Option<String>,
}

/// Reads `declare`'s result (`list<workflow-type>`). The guest is not
/// trusted: a value of another shape is an error naming what is wrong,
/// and a name declared twice is refused (which of the two would run?).
pub(crate) fn from_val(value: &Val) -> Result<Vec<WorkflowDeclaration>, String> {
    let Val::List(items) = value else { return Err(format!("`declare` returned {value:?}, not a list")) };
    let mut out: Vec<WorkflowDeclaration> = Vec::with_capacity(items.len());
    for item in items {
        let fields = record(item, "workflow-type")?;
        let name = string(field(fields, "name")?)?;
        if name.is_empty() {
            return Err("`declare` returned a workflow type with an empty name".into());
        }
        if out.iter().any(|d| d.name == name) {
            return Err(format!("`declare` returned workflow type `{name}` twice"));
        }
        let Val::List(handlers) = field(fields, "handlers")? else { return Err(format!("workflow type `{name}`: handlers is not a list")) };
        let mut declared: Vec<HandlerDeclaration> = Vec::with_capacity(handlers.len());
        for h in handlers {
            let hf = record(h, "handler")?;
            let kind = match field(hf, "kind")? {
                Val::Enum(k) if k == "signal" => HandlerKind::Signal,
                Val::Enum(k) if k == "query" => HandlerKind::Query,
                Val::Enum(k) if k == "update" => HandlerKind::Update,
                other => return Err(format!("workflow type `{name}`: handler kind {other:?}")),
            };
            let handler = HandlerDeclaration {
                name: string(field(hf, "name")?)?,
                kind,
                has_validator: matches!(field(hf, "has-validator")?, Val::Bool(true)),
                description: optional_string(field(hf, "description")?)?,
            };
            if declared.iter().any(|d| d.name == handler.name && d.kind == handler.kind) {
                return Err(format!("workflow type `{name}` declares {} `{}` twice", handler.kind, handler.name));
            }
            declared.push(handler);
        }
        out.push(WorkflowDeclaration { name, handlers: declared, description: optional_string(field(fields, "description")?)? });
    }
    Ok(out)
}

fn record<'a>(value: &'a Val, what: &str) -> Result<&'a [(String, Val)], String> {
    match value {
        Val::Record(fields) => Ok(fields),
        other => Err(format!("`declare` returned {other:?} where a {what} record belongs")),
    }
}

fn field<'a>(fields: &'a [(String, Val)], name: &str) -> Result<&'a Val, String> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v).ok_or_else(|| format!("`declare` returned a record without `{name}`"))
}

fn string(value: &Val) -> Result<String, String> {
    match value {
        Val::String(s) => Ok(s.clone()),
        other => Err(format!("`declare` returned {other:?} where a string belongs")),
    }
}

fn optional_string(value: &Val) -> Result<Option<String>, String> {
    match value {
        Val::Option(None) => Ok(None),
        Val::Option(Some(v)) => string(v).map(Some),
        other => Err(format!("`declare` returned {other:?} where an option<string> belongs")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(name: &str, kind: &str) -> Val {
        Val::Record(vec![
            ("name".into(), Val::String(name.into())),
            ("kind".into(), Val::Enum(kind.into())),
            ("has-validator".into(), Val::Bool(kind == "update")),
            ("description".into(), Val::Option(None)),
        ])
    }

    fn workflow(name: &str, handlers: Vec<Val>) -> Val {
        Val::Record(vec![
            ("name".into(), Val::String(name.into())),
            ("handlers".into(), Val::List(handlers)),
            ("description".into(), Val::Option(Some(Box::new(Val::String("does things".into()))))),
        ])
    }

    #[test]
    fn declarations_are_read_with_their_handlers() {
        let value = Val::List(vec![workflow("Order", vec![handler("approve", "update"), handler("status", "query")])]);
        let got = from_val(&value).unwrap();
        assert_eq!(got[0].name, "Order");
        assert_eq!(got[0].description.as_deref(), Some("does things"));
        assert_eq!(
            got[0].handlers[0],
            HandlerDeclaration { name: "approve".into(), kind: HandlerKind::Update, has_validator: true, description: None }
        );
        assert_eq!(got[0].handlers[1].kind, HandlerKind::Query);
    }

    #[test]
    fn a_type_declared_twice_or_without_a_name_is_refused() {
        let twice = Val::List(vec![workflow("A", vec![]), workflow("A", vec![])]);
        assert!(from_val(&twice).unwrap_err().contains("`A` twice"));
        assert!(from_val(&Val::List(vec![workflow("", vec![])])).unwrap_err().contains("empty name"));
        let handler_twice = Val::List(vec![workflow("A", vec![handler("s", "signal"), handler("s", "signal")])]);
        assert!(from_val(&handler_twice).unwrap_err().contains("signal `s` twice"));
    }

    #[test]
    fn a_value_of_another_shape_is_an_error_not_a_panic() {
        assert!(from_val(&Val::String("x".into())).is_err());
        assert!(from_val(&Val::List(vec![Val::U32(1)])).is_err());
        assert!(from_val(&Val::List(vec![Val::Record(vec![])])).unwrap_err().contains("without `name`"));
    }
}
