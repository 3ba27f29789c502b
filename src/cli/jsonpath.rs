//! `-o jsonpath=TEMPLATE`: kubectl's JSONPath templates, such as
//! `{.items[*].metadata.name}` or
//! `{range .items[*]}{.metadata.name}{"\t"}{.spec.subject}{"\n"}{end}`.
//!
//! The template language (text, `{EXPRESSION}`, `{"literal"}`,
//! `{range EXPRESSION}…{end}`) is parsed here; each expression is an
//! RFC 9535 JSONPath query, evaluated by the `serde_json_path` crate. An
//! expression without a leading `$` is relative to the object printed (or,
//! inside a `range`, to the current element): `.metadata.name` is
//! `$.metadata.name`.
//!
//! As in kubectl: several results of one expression are separated by a
//! space, strings print without quotes and other values as JSON, a missing
//! field prints nothing, and no newline is added at the end.

use serde_json::Value;
use serde_json_path::JsonPath;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Query(JsonPath),
    /// `{range QUERY}BODY{end}`: the body once per element.
    Range(JsonPath, Vec<Node>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("jsonpath template {template:?}: {problem}")]
pub struct TemplateError {
    template: String,
    problem: String,
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(source: &str) -> Result<Template, TemplateError> {
        let error = |problem: String| TemplateError {
            template: source.to_owned(),
            problem,
        };
        // Open `range`s, innermost last; the template's top level first.
        let mut scopes: Vec<(Option<JsonPath>, Vec<Node>)> = vec![(None, Vec::new())];
        let mut rest = source;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                push(&mut scopes, Node::Text(rest.to_owned()));
                break;
            };
            if open > 0 {
                push(&mut scopes, Node::Text(rest[..open].to_owned()));
            }
            let close = closing_brace(&rest[open + 1..]).ok_or_else(|| {
                error(format!(
                    "the '{{' at byte {} is not closed",
                    source.len() - rest.len() + open
                ))
            })?;
            let expression = rest[open + 1..open + 1 + close].trim();
            rest = &rest[open + 2 + close..];

            if expression == "end" {
                if scopes.len() == 1 {
                    return Err(error("{end} without a {range}".into()));
                }
                if let Some((Some(query), body)) = scopes.pop() {
                    push(&mut scopes, Node::Range(query, body));
                }
            } else if let Some(query) = expression.strip_prefix("range ") {
                scopes.push((Some(parse_query(query).map_err(error)?), Vec::new()));
            } else if let Some(literal) = quoted(expression) {
                push(&mut scopes, Node::Text(literal.map_err(error)?));
            } else {
                push(
                    &mut scopes,
                    Node::Query(parse_query(expression).map_err(error)?),
                );
            }
        }
        if scopes.len() > 1 {
            return Err(error("a {range} is not closed with {end}".into()));
        }
        let nodes = scopes.pop().map(|(_, nodes)| nodes).unwrap_or_default();
        Ok(Template {
            source: source.to_owned(),
            nodes,
        })
    }
}

fn push(scopes: &mut [(Option<JsonPath>, Vec<Node>)], node: Node) {
    if let Some((_, nodes)) = scopes.last_mut() {
        nodes.push(node);
    }
}

/// Index of the `}` that closes an expression, skipping quoted strings
/// (a filter may compare with a string holding braces).
fn closing_brace(text: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
    }
    None
}

/// `"…"` or `'…'`: a literal, with `\n`, `\t`, `\r`, `\\` and the quote
/// escaped; `None` when `expression` is not quoted.
fn quoted(expression: &str) -> Option<Result<String, String>> {
    let quote = expression
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')?;
    let inner = expression
        .strip_prefix(quote)
        .and_then(|rest| rest.strip_suffix(quote));
    let Some(inner) = inner else {
        return Some(Err(format!("{expression}: the quote is not closed")));
    };
    let mut text = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('t') => text.push('\t'),
            Some('r') => text.push('\r'),
            Some(other @ ('\\' | '"' | '\'')) => text.push(other),
            Some(other) => return Some(Err(format!("{expression}: unknown escape \\{other}"))),
            None => return Some(Err(format!("{expression}: ends with a lone \\"))),
        }
    }
    Some(Ok(text))
}

/// kubectl's relative form (`.a.b`, `[0]`, `a.b`) as an RFC 9535 query.
fn parse_query(expression: &str) -> Result<JsonPath, String> {
    let expression = expression.trim();
    let absolute = if expression.starts_with('$') {
        expression.to_owned()
    } else if expression.starts_with('.') || expression.starts_with('[') {
        format!("${expression}")
    } else if let Some(rest) = expression.strip_prefix('@') {
        format!("${rest}")
    } else {
        format!("$.{expression}")
    };
    JsonPath::parse(&absolute).map_err(|e| format!("{expression}: {e}"))
}

impl Template {
    /// The template applied to `value`.
    pub fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        render(&self.nodes, value, &mut out);
        out
    }
}

fn render(nodes: &[Node], value: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Query(query) => {
                let results = query.query(value).all();
                for (i, result) in results.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    match result {
                        Value::String(text) => out.push_str(text),
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
            Node::Range(query, body) => {
                let results = query.query(value).all();
                // `{range .items}` walks the list as `{range .items[*]}` does.
                let elements: Vec<&Value> = match results.as_slice() {
                    [Value::Array(items)] => items.iter().collect(),
                    _ => results,
                };
                for element in elements {
                    render(body, element, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(template: &str, value: &Value) -> String {
        template
            .parse::<Template>()
            .unwrap_or_else(|e| panic!("{e}"))
            .render(value)
    }

    fn list() -> Value {
        json!({
            "kind": "UserList",
            "items": [
                {"metadata": {"name": "admin"}, "superUser": true, "groups": ["a", "b"]},
                {"metadata": {"name": "alice"}, "superUser": false, "groups": []},
            ]
        })
    }

    #[test]
    fn queries_as_kubectl_prints_them() {
        let list = list();
        assert_eq!(render("{.items[*].metadata.name}", &list), "admin alice");
        assert_eq!(render("{$.kind}", &list), "UserList");
        assert_eq!(render("kind={.kind}!", &list), "kind=UserList!");
        assert_eq!(render("{.items[0].superUser}", &list), "true");
        assert_eq!(render("{.items[0].groups}", &list), r#"["a","b"]"#);
        assert_eq!(render("{.items[0].metadata}", &list), r#"{"name":"admin"}"#);
        assert_eq!(render("{.nothing}", &list), "");
        assert_eq!(
            render("{.items[?(@.superUser == false)].metadata.name}", &list),
            "alice"
        );
        assert_eq!(render("{kind}", &list), "UserList");
    }

    #[test]
    fn ranges_and_literals() {
        let list = list();
        assert_eq!(
            render(
                r#"{range .items[*]}{.metadata.name}{"\t"}{.superUser}{"\n"}{end}"#,
                &list
            ),
            "admin\ttrue\nalice\tfalse\n"
        );
        assert_eq!(
            render("{range .items}[{.metadata.name}]{end}", &list),
            "[admin][alice]"
        );
        assert_eq!(
            render("{range .items[*]}{range .groups[*]}{@}{end};{end}", &list),
            "ab;;"
        );
        assert_eq!(render(r#"{'a\'b'}{"{}"}"#, &list), "a'b{}");
        assert_eq!(
            render(r#"{.items[?(@.metadata.name == "a}b")].kind}x"#, &list),
            "x"
        );
    }

    #[test]
    fn bad_templates_are_errors() {
        for bad in [
            "{.items",
            "{end}",
            "{range .items[*]}{.x}",
            "{.items[}",
            r#"{"unclosed}"#,
            r#"{"\q"}"#,
        ] {
            let error = bad.parse::<Template>().expect_err(bad);
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
