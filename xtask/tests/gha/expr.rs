//! The `${{ }}` expressions of our workflows, and nothing more: literals, the contexts a job
//! sees, `!`, `==`, `!=`, `&&`, `||`, property access, and the functions `success`, `failure`,
//! `cancelled`, `always`, `fromJson`, `toJSON`, `hashFiles`. Anything else panics, so that a
//! test cannot pass a step whose condition or inputs it did not really evaluate; so does a
//! `needs.<job>.outputs.<name>` (or `jobs.…`) the job does not declare.

use serde_json::Value;

/// What an expression can see.
pub struct Scope<'a> {
    /// `github`, `inputs`, `matrix`, `needs`, `steps`, `runner` (only those present may be used).
    pub contexts: &'a serde_json::Map<String, Value>,
    /// What `success()`, `failure()`, `cancelled()` return here.
    pub status: Status,
    /// `hashFiles(path)`: the digest of one file of the workspace.
    pub hash_file: &'a dyn Fn(&str) -> String,
}

/// The status functions' answers where an expression is evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// `success()`.
    pub success: bool,
    /// `failure()`.
    pub failure: bool,
    /// `cancelled()`.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

fn lex(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                assert!(i < chars.len(), "unterminated string in `{src}`");
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        s.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse().unwrap_or_else(|_| panic!("number `{text}` in `{src}`")),
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "==" => Some("=="),
                "!=" => Some("!="),
                "&&" => Some("&&"),
                "||" => Some("||"),
                _ => None,
            };
            if let Some(op) = op {
                out.push(Tok::Op(op));
                i += 2;
                continue;
            }
            let op = match c {
                '!' => "!",
                '(' => "(",
                ')' => ")",
                '.' => ".",
                ',' => ",",
                _ => panic!("`{c}` in `{src}` is not supported by this evaluator"),
            };
            out.push(Tok::Op(op));
            i += 1;
        }
    }
    out
}

struct Parser<'s, 'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'s str,
    scope: &'s Scope<'a>,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: &'static str) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &'static str) {
        assert!(self.eat(op), "expected `{op}` at token {} of `{}`", self.pos, self.src);
    }

    fn or(&mut self) -> Value {
        let mut left = self.and();
        while self.eat("||") {
            let right = self.and();
            left = if truthy(&left) { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Value {
        let mut left = self.eq();
        while self.eat("&&") {
            let right = self.eq();
            left = if truthy(&left) { right } else { left };
        }
        left
    }

    fn eq(&mut self) -> Value {
        let mut left = self.unary();
        loop {
            if self.eat("==") {
                let right = self.unary();
                left = Value::Bool(equal(&left, &right));
            } else if self.eat("!=") {
                let right = self.unary();
                left = Value::Bool(!equal(&left, &right));
            } else {
                return left;
            }
        }
    }

    fn unary(&mut self) -> Value {
        if self.eat("!") {
            return Value::Bool(!truthy(&self.unary()));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Value {
        let (mut value, mut path) = self.primary();
        while self.eat(".") {
            let Some(Tok::Ident(name)) = self.peek().cloned() else {
                panic!("expected a property name after `{path}.` in `{}`", self.src)
            };
            self.pos += 1;
            value = match value.get(&name) {
                Some(v) => v.clone(),
                // A job's outputs are the ones it declares (each '' until set): another is a
                // misspelt name, which GitHub would silently read as ''.
                None if path.ends_with(".outputs")
                    && (path.starts_with("needs.") || path.starts_with("jobs.")) =>
                {
                    panic!("`{path}.{name}`: the job declares no such output (in `{}`)", self.src)
                }
                // A step's output nobody set is '' (null) on GitHub.
                None if path.ends_with(".outputs") => Value::Null,
                None => panic!("`{path}.{name}` does not exist (in `{}`)", self.src),
            };
            path = format!("{path}.{name}");
        }
        value
    }

    fn primary(&mut self) -> (Value, String) {
        let tok = self.peek().cloned().unwrap_or_else(|| panic!("`{}` ends early", self.src));
        self.pos += 1;
        match tok {
            Tok::Str(s) => (Value::String(s.clone()), format!("'{s}'")),
            Tok::Num(n) => (serde_json::json!(n), n.to_string()),
            Tok::Op("(") => {
                let v = self.or();
                self.expect(")");
                (v, "(…)".to_owned())
            }
            Tok::Ident(name) if self.eat("(") => {
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.or());
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",");
                    }
                }
                (self.call(&name, args), format!("{name}(…)"))
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => (Value::Bool(true), name),
                "false" => (Value::Bool(false), name),
                "null" => (Value::Null, name),
                _ => {
                    let v = self.scope.contexts.get(&name).unwrap_or_else(|| {
                        panic!("context `{name}` is not available here (in `{}`)", self.src)
                    });
                    (v.clone(), name)
                }
            },
            Tok::Op(op) => panic!("unexpected `{op}` in `{}`", self.src),
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Value {
        let status = self.scope.status;
        let nullary = |v: bool| {
            assert!(args.is_empty(), "{name}() takes no argument (in `{}`)", self.src);
            Value::Bool(v)
        };
        match name {
            "success" => nullary(status.success),
            "failure" => nullary(status.failure),
            "cancelled" => nullary(status.cancelled),
            "always" => nullary(true),
            "fromJson" | "fromJSON" => {
                let [Value::String(text)] = args.as_slice() else {
                    panic!("fromJson takes one string (in `{}`)", self.src)
                };
                serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("fromJson of {text:?} (in `{}`): {e}", self.src))
            }
            "toJSON" | "toJson" => {
                let [v] = args.as_slice() else { panic!("toJSON takes one value") };
                Value::String(serde_json::to_string_pretty(v).expect("JSON"))
            }
            "hashFiles" => {
                let [Value::String(path)] = args.as_slice() else {
                    panic!("hashFiles: one literal path here (in `{}`)", self.src)
                };
                assert!(!path.contains(['*', '?', '[', '!']), "hashFiles: no globs here: {path}");
                Value::String((self.scope.hash_file)(path))
            }
            _ => panic!("function `{name}` is not supported by this evaluator (in `{}`)", self.src),
        }
    }
}

/// GitHub's truthiness: false, 0, '', null are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// GitHub's loose equality: strings case-insensitively, different types as numbers.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            std::ptr::eq(a, b)
        }
        _ => number(a) == number(b),
    }
}

/// Evaluates one expression (the text inside `${{ }}`, or an `if:` without it).
pub fn eval(src: &str, scope: &Scope<'_>) -> Value {
    let mut p = Parser { toks: lex(src), pos: 0, src, scope };
    let v = p.or();
    assert!(p.pos == p.toks.len(), "trailing tokens in `{src}`");
    v
}

/// Whether an `if:` uses a status function; without one, GitHub adds `success() &&`.
pub fn has_status_function(src: &str) -> bool {
    let toks = lex(src);
    toks.windows(2).any(|w| {
        matches!(&w[0], Tok::Ident(n) if ["success", "failure", "cancelled", "always"].contains(&n.as_str()))
            && w[1] == Tok::Op("(")
    })
}

/// A value as a string, as GitHub puts it into text: null is '', objects are JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string_pretty(other).expect("JSON"),
    }
}

/// Evaluates a value of the workflow: `${{ e }}` alone keeps its type; text with several
/// expressions becomes text.
pub fn template(text: &str, scope: &Scope<'_>) -> Value {
    let trimmed = text.trim();
    if let Some(inner) = trimmed.strip_prefix("${{").and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("${{")
    {
        return eval(inner, scope);
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap_or_else(|| panic!("unclosed ${{{{ in {text}"));
        out.push_str(&to_text(&eval(&rest[start + 3..start + end], scope)));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}
