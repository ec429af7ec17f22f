//! Which messages of an event source invoke its function: a match on fields of the message's
//! JSON body in the style of Lambda's filter criteria. The filter is an object whose keys name
//! fields; a value is a nested object (the field's own fields) or a list of patterns, any of
//! which may match. A message matches when every field named does. Patterns: a string, number,
//! boolean or null (equal), `{"prefix": "…"}`, `{"suffix": "…"}`, `{"exists": true|false}`,
//! `{"numeric": [">", 0, "<=", 100]}` and `{"anything-but": [values]}`. A field whose value is an
//! array matches when one of its elements does. A body that is not JSON matches no filter.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Longest filter, as JSON text.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of field objects.
const MAX_DEPTH: usize = 8;

/// A parsed filter, kept with the JSON it was written as (stored and shown as such).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFilter {
    written: Value,
    fields: Fields,
}

/// Fields to match, each by name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields(Vec<(String, Field)>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Nested(Fields),
    AnyOf(Vec<Pattern>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Equals(Value),
    Prefix(String),
    Suffix(String),
    Exists(bool),
    Numeric(Vec<(Comparison, serde_json::Number)>),
    AnythingBut(Vec<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

/// Why a filter is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter: {0}")]
pub struct InvalidFilter(String);

impl MessageFilter {
    pub fn parse(written: Value) -> Result<Self, InvalidFilter> {
        let size = written.to_string().len();
        if size > MAX_FILTER_BYTES {
            return Err(InvalidFilter(format!(
                "{size} bytes of JSON; at most {MAX_FILTER_BYTES}"
            )));
        }
        let Value::Object(object) = &written else {
            return Err(InvalidFilter(
                "must be an object naming fields of the message, like {\"type\": [\"order.created\"]}"
                    .to_string(),
            ));
        };
        let fields = fields(object, "", 1)?;
        Ok(Self { written, fields })
    }

    /// The filter as it was written.
    pub fn as_json(&self) -> &Value {
        &self.written
    }

    /// Whether a message with this body invokes the function.
    pub fn matches(&self, body: &[u8]) -> bool {
        serde_json::from_slice::<Value>(body).is_ok_and(|message| self.fields.match_in(&message))
    }
}

fn fields(object: &Map<String, Value>, path: &str, depth: usize) -> Result<Fields, InvalidFilter> {
    if object.is_empty() {
        let place = if path.is_empty() { "the filter" } else { path };
        return Err(InvalidFilter(format!("{place} names no field")));
    }
    if depth > MAX_DEPTH {
        return Err(InvalidFilter(format!(
            "{path} is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    object
        .iter()
        .map(|(name, value)| {
            let path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let field = match value {
                Value::Object(nested) => Field::Nested(fields(nested, &path, depth + 1)?),
                Value::Array(patterns) if !patterns.is_empty() => Field::AnyOf(
                    patterns
                        .iter()
                        .map(|pattern| Pattern::parse(pattern, &path))
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    return Err(InvalidFilter(format!(
                        "{path} must be a list of patterns (like [\"a\", {{\"prefix\": \"b\"}}]) or an object of its fields"
                    )));
                }
            };
            Ok((name.clone(), field))
        })
        .collect::<Result<_, _>>()
        .map(Fields)
}

impl Pattern {
    fn parse(pattern: &Value, path: &str) -> Result<Self, InvalidFilter> {
        let invalid = |what: &str| Err(InvalidFilter(format!("{path}: {what}")));
        let object = match pattern {
            Value::Object(object) => object,
            Value::Array(_) => return invalid("a pattern cannot be a list"),
            value => return Ok(Self::Equals(value.clone())),
        };
        let mut entries = object.iter();
        let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
            return invalid(
                "a pattern object has one key: prefix, suffix, exists, numeric or anything-but",
            );
        };
        match (operator.as_str(), operand) {
            ("prefix", Value::String(prefix)) => Ok(Self::Prefix(prefix.clone())),
            ("suffix", Value::String(suffix)) => Ok(Self::Suffix(suffix.clone())),
            ("exists", Value::Bool(exists)) => Ok(Self::Exists(*exists)),
            ("numeric", Value::Array(terms)) => numeric(terms)
                .map(Self::Numeric)
                .or_else(|why| invalid(&why)),
            ("anything-but", Value::Array(values))
                if values.iter().all(|v| !v.is_object() && !v.is_array()) =>
            {
                Ok(Self::AnythingBut(values.clone()))
            }
            ("anything-but", value) if !value.is_object() && !value.is_array() => {
                Ok(Self::AnythingBut(vec![value.clone()]))
            }
            ("prefix" | "suffix", _) => invalid(&format!("{operator} takes a string")),
            ("exists", _) => invalid("exists takes true or false"),
            ("numeric", _) => invalid("numeric takes a list like [\">\", 0, \"<=\", 100]"),
            ("anything-but", _) => invalid("anything-but takes a value or a list of values"),
            (other, _) => invalid(&format!(
                "unknown pattern {other:?}: use prefix, suffix, exists, numeric or anything-but"
            )),
        }
    }

    /// Whether `value` (the field's, `None` when the message lacks it) matches.
    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Self::Exists(exists), value) => *exists == value.is_some(),
            (_, None) => false,
            (pattern, Some(Value::Array(elements))) => {
                elements.iter().any(|element| pattern.matches_one(element))
            }
            (pattern, Some(value)) => pattern.matches_one(value),
        }
    }

    fn matches_one(&self, value: &Value) -> bool {
        match self {
            Self::Equals(expected) => same(expected, value),
            Self::Prefix(prefix) => value.as_str().is_some_and(|text| text.starts_with(prefix)),
            Self::Suffix(suffix) => value.as_str().is_some_and(|text| text.ends_with(suffix)),
            Self::Exists(_) => true,
            Self::Numeric(terms) => value.as_f64().is_some_and(|number| {
                terms.iter().all(|(comparison, bound)| {
                    comparison.holds(number, bound.as_f64().unwrap_or(f64::NAN))
                })
            }),
            Self::AnythingBut(excluded) => !excluded.iter().any(|excluded| same(excluded, value)),
        }
    }
}

/// JSON equality, with numbers compared as numbers (`1` equals `1.0`).
fn same(expected: &Value, value: &Value) -> bool {
    match (expected, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// `[">", 0, "<=", 100]`: one or two comparisons, each an operator and a number.
fn numeric(terms: &[Value]) -> Result<Vec<(Comparison, serde_json::Number)>, String> {
    let usage = "numeric takes one or two comparisons like [\">\", 0, \"<=\", 100]";
    if terms.is_empty() || terms.len() > 4 || !terms.len().is_multiple_of(2) {
        return Err(usage.to_string());
    }
    terms
        .chunks(2)
        .map(|term| {
            let comparison = match term[0].as_str() {
                Some("<") => Comparison::Less,
                Some("<=") => Comparison::LessOrEqual,
                Some("=") => Comparison::Equal,
                Some(">=") => Comparison::GreaterOrEqual,
                Some(">") => Comparison::Greater,
                _ => return Err(usage.to_string()),
            };
            match &term[1] {
                Value::Number(bound) => Ok((comparison, bound.clone())),
                _ => Err(usage.to_string()),
            }
        })
        .collect()
}

impl Comparison {
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::Less => value < bound,
            Self::LessOrEqual => value <= bound,
            Self::Equal => value == bound,
            Self::GreaterOrEqual => value >= bound,
            Self::Greater => value > bound,
        }
    }
}

impl Fields {
    fn match_in(&self, message: &Value) -> bool {
        self.0.iter().all(|(name, field)| {
            let value = message.as_object().and_then(|object| object.get(name));
            match field {
                Field::Nested(fields) => value.is_some_and(|value| fields.match_in(value)),
                Field::AnyOf(patterns) => patterns.iter().any(|pattern| pattern.matches(value)),
            }
        })
    }
}

impl Serialize for MessageFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.written.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MessageFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(written: Value) -> MessageFilter {
        MessageFilter::parse(written).unwrap()
    }

    fn matches(written: Value, message: Value) -> bool {
        filter(written).matches(message.to_string().as_bytes())
    }

    #[test]
    fn listed_values_match_any_of_them_and_every_field_must_match() {
        let orders = json!({"type": ["order.created", "order.paid"], "region": ["eu"]});
        assert!(matches(
            orders.clone(),
            json!({"type": "order.paid", "region": "eu", "id": 1})
        ));
        assert!(!matches(
            orders.clone(),
            json!({"type": "order.paid", "region": "us"})
        ));
        assert!(!matches(orders, json!({"type": "order.paid"})));
    }

    #[test]
    fn nested_objects_descend_and_arrays_match_by_an_element() {
        let nested = json!({"order": {"customer": {"tier": ["gold"]}}});
        assert!(matches(
            nested.clone(),
            json!({"order": {"customer": {"tier": "gold"}}})
        ));
        assert!(!matches(
            nested.clone(),
            json!({"order": {"customer": "gold"}})
        ));
        assert!(!matches(nested, json!({"order": "x"})));
        assert!(matches(
            json!({"tags": ["urgent"]}),
            json!({"tags": ["new", "urgent"]})
        ));
    }

    #[test]
    fn patterns_compare_strings_numbers_and_presence() {
        assert!(matches(
            json!({"path": [{"prefix": "/img/"}]}),
            json!({"path": "/img/a.png"})
        ));
        assert!(!matches(
            json!({"path": [{"prefix": "/img/"}]}),
            json!({"path": 3})
        ));
        assert!(matches(
            json!({"path": [{"suffix": ".png"}]}),
            json!({"path": "/img/a.png"})
        ));
        let range = json!({"amount": [{"numeric": [">", 100, "<=", 200]}]});
        assert!(matches(range.clone(), json!({"amount": 150.5})));
        assert!(!matches(range.clone(), json!({"amount": 100})));
        assert!(!matches(range, json!({"amount": "150"})));
        assert!(matches(json!({"n": [1]}), json!({"n": 1.0})));
        assert!(matches(
            json!({"error": [{"exists": false}]}),
            json!({"ok": true})
        ));
        assert!(!matches(
            json!({"error": [{"exists": false}]}),
            json!({"error": null})
        ));
        assert!(matches(
            json!({"error": [{"exists": true}]}),
            json!({"error": null})
        ));
        let not_test = json!({"env": [{"anything-but": ["test", "dev"]}]});
        assert!(matches(not_test.clone(), json!({"env": "prod"})));
        assert!(!matches(not_test.clone(), json!({"env": "dev"})));
        assert!(!matches(not_test, json!({})));
        assert!(matches(
            json!({"done": [false, null]}),
            json!({"done": null})
        ));
    }

    #[test]
    fn a_body_that_is_not_json_matches_nothing() {
        assert!(!filter(json!({"type": [{"exists": false}]})).matches(b"not json"));
    }

    #[test]
    fn malformed_filters_are_refused_naming_the_field() {
        let refused = |written: Value| MessageFilter::parse(written).unwrap_err().to_string();
        assert!(refused(json!(["a"])).contains("must be an object"));
        assert!(refused(json!({})).contains("names no field"));
        assert!(refused(json!({"type": "a"})).contains("type must be a list of patterns"));
        assert!(refused(json!({"a": {"b": []}})).contains("a.b must be a list"));
        assert!(refused(json!({"a": [{"regex": "x"}]})).contains("unknown pattern \"regex\""));
        assert!(refused(json!({"a": [{"numeric": [">"]}]})).contains("numeric takes"));
        assert!(refused(json!({"a": [{"prefix": "x", "suffix": "y"}]})).contains("one key"));
        let long = json!({"a": ["x".repeat(MAX_FILTER_BYTES)]});
        assert!(refused(long).contains("at most"));
    }

    #[test]
    fn a_filter_keeps_the_json_it_was_written_as() {
        let written = json!({"type": ["a"], "n": [{"numeric": ["=", 1]}]});
        let parsed: MessageFilter = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), written);
    }
}
